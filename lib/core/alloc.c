/*
 * lib/core/alloc.c - the one place that calls libc's allocator. Every other
 * file in lib/ allocates through a cc_allocator (a ctx's, or the default
 * table here), so an embedder's hooks see all of the library's memory.
 */
#include <stdlib.h>

#include "internal.h"

static void *
libc_alloc(void *ud, size_t n)
{
    CC__UNUSED(ud);
    return malloc(n ? n : 1);
}

static void
libc_free(void *ud, void *p, size_t n)
{
    CC__UNUSED(ud);
    CC__UNUSED(n);
    free(p);
}

static void *
libc_realloc(void *ud, void *p, size_t old_n, size_t new_n)
{
    CC__UNUSED(ud);
    CC__UNUSED(old_n);
    return realloc(p, new_n ? new_n : 1);
}

static const cc_allocator libc_allocator = {libc_alloc, libc_free,
                                            libc_realloc, NULL};

const cc_allocator *
cc__default_allocator(void)
{
    return &libc_allocator;
}

void *
cc__alloc(const cc_allocator *a, size_t n)
{
    return a->alloc(a->ud, n);
}

void *
cc__calloc(const cc_allocator *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = a->alloc(a->ud, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *
cc__realloc(const cc_allocator *a, void *p, size_t old_n, size_t new_n)
{
    return a->realloc(a->ud, p, old_n, new_n);
}

void
cc__free(const cc_allocator *a, void *p, size_t n)
{
    if (p)
        a->free(a->ud, p, n);
}

char *
cc__strdup(const cc_allocator *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = a->alloc(a->ud, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void
cc__free_str(const cc_allocator *a, char *s)
{
    if (s)
        a->free(a->ud, s, strlen(s) + 1);
}
