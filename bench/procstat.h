/*
 * bench/procstat.h - what the load generators (loadgen.c, chatload.c)
 * read of the server process they measure: its CPU time and resident
 * memory, from /proc. Header-only.
 */
#ifndef CC_BENCH_PROCSTAT_H
#define CC_BENCH_PROCSTAT_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* /proc/PID/stat fields 14 and 15 (utime, stime) in seconds, every thread
 * of the process; -1 if it is gone. */
static inline double
proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    unsigned long long ut, st;
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name may hold spaces and parens: skip past the last ')' */
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of PID in KiB, or -1. */
static inline long
proc_rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

#endif
