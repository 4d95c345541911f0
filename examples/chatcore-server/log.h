/*
 * examples/chatcore-server/log.h - a tiny structured logger: one line per
 * event, written with a single fwrite + fflush so lines from several
 * threads never interleave.
 *
 * JSON format (one object per line, fields in this order):
 *     {"ts":"2026-11-23T10:00:00.123Z","level":"info","msg":"listening",
 *      "host":"0.0.0.0","port":8080}
 * Text format (best effort from the same fields):
 *     2026-11-23T10:00:00.123Z INFO listening host=0.0.0.0 port=8080
 *
 * Caller fields are a fragment of JSON object members without the braces
 * ("\"tenant\":\"t1\",\"session\":\"S_1\""), the shape the library's log
 * hook (cc_chat_on_log, chat.h) produces, so cc_log_hook can be passed to
 * it directly with a cc_logger * as data. Levels match the library's
 * CC_LOG_DEBUG..CC_LOG_ERROR (0..3).
 */
#ifndef CHATCORE_SERVER_LOG_H
#define CHATCORE_SERVER_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Same values as chat.h's CC_LOG_*; named apart so both headers mix. */
enum {
    CC_LOGGER_DEBUG = 0,
    CC_LOGGER_INFO = 1,
    CC_LOGGER_WARN = 2,
    CC_LOGGER_ERROR = 3
};
enum { CC_LOGGER_JSON = 0, CC_LOGGER_TEXT = 1 };

typedef struct cc_logger {
    FILE *out;      /* NULL = stderr */
    int level;      /* lines below this level are dropped */
    int format;     /* CC_LOGGER_JSON or CC_LOGGER_TEXT */
    /* Wall clock in ms since the Unix epoch; NULL = the real clock. Lets a
     * test pin "ts". */
    uint64_t (*now_ms)(void *data);
    void *now_data;
} cc_logger;

/* Set up *lg: out (NULL = stderr), threshold and format; real clock. */
void cc_logger_init(cc_logger *lg, FILE *out, int level, int format);

/* "debug" "info" "warn" "error" -> 0..3; anything else -> -1. */
int cc_log_level_parse(const char *name);
/* "json" -> CC_LOGGER_JSON, "text" -> CC_LOGGER_TEXT, else -1. */
int cc_log_format_parse(const char *name);

/* Nonzero when a line at `level` would be written (skip building costly
 * fields otherwise). */
int cc_log_enabled(const cc_logger *lg, int level);

/* Write one line. msg: NUL-terminated text (escaped here); fields: NULL or
 * JSON members without braces, embedded as given in JSON format. */
void cc_log(cc_logger *lg, int level, const char *msg, const char *fields);

/* cc_log with the library's hook signature: data is the cc_logger *. */
void cc_log_hook(void *data, int level, const char *msg, const char *fields);

/* cc_log whose fields fragment is built by printf from fmt (NULL = none).
 * Escape strings put inside "..." with cc_json_escape first. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void cc_logf(cc_logger *lg, int level, const char *msg, const char *fmt,
             ...);

/* Write src JSON-escaped (without the surrounding quotes) into dst: '"'
 * and '\' get a backslash, control characters become \u00XX, bytes that
 * are not valid UTF-8 become \ufffd. Writes at most cap-1 bytes plus a NUL
 * (when cap > 0), never splitting an escape or a character. Returns the
 * length the whole escaped string needs, without the NUL (>= cap means it
 * was truncated), as snprintf does. */
size_t cc_json_escape(char *dst, size_t cap, const char *src);

/* The same for len bytes of src (may hold NULs, escaped as \u0000). */
size_t cc_json_escape_n(char *dst, size_t cap, const char *src, size_t len);

/* Format ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into buf
 * (at least 25 bytes). Returns buf. */
char *cc_log_time(char *buf, size_t cap, uint64_t ms);

#endif
