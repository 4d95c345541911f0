/*
 * lib/core/map.c - an intrusive string-keyed hash map (chained). Entries
 * embed a cc__hnode whose key points into the entry itself, so the map
 * allocates only its bucket array. Used for tenants, agents, sessions and
 * users, where lookups by id are on every frame's path.
 */
#include "internal.h"

uint32_t
cc__hash_str(const char *s)
{
    /* FNV-1a: ids are short and not attacker-chosen in bulk beyond the
     * per-IP and per-tenant limits; chains stay short at load <= 1. */
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

void
cc__map_init(cc__map *m, const cc_allocator *a)
{
    memset(m, 0, sizeof(*m));
    m->a = a;
}

void
cc__map_free(cc__map *m)
{
    if (m->b)
        cc__free(m->a, m->b, m->nb * sizeof(*m->b));
    m->b = NULL;
    m->nb = m->n = 0;
}

cc__hnode *
cc__map_get(const cc__map *m, const char *key)
{
    if (!m->nb)
        return NULL;
    uint32_t h = cc__hash_str(key);
    for (cc__hnode *n = m->b[h & (m->nb - 1)]; n; n = n->next)
        if (n->h == h && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

static int
grow(cc__map *m)
{
    size_t nb = m->nb ? m->nb * 2 : 16;
    cc__hnode **b = cc__calloc(m->a, nb, sizeof(*b));
    if (!b)
        return CC_ENOMEM;
    for (size_t i = 0; i < m->nb; i++) {
        cc__hnode *n = m->b[i];
        while (n) {
            cc__hnode *next = n->next;
            n->next = b[n->h & (nb - 1)];
            b[n->h & (nb - 1)] = n;
            n = next;
        }
    }
    if (m->b)
        cc__free(m->a, m->b, m->nb * sizeof(*m->b));
    m->b = b;
    m->nb = nb;
    return 0;
}

int
cc__map_put(cc__map *m, cc__hnode *n, const char *key)
{
    if (m->n + 1 > m->nb && grow(m) != 0)
        return CC_ENOMEM;
    n->key = key;
    n->h = cc__hash_str(key);
    n->next = m->b[n->h & (m->nb - 1)];
    m->b[n->h & (m->nb - 1)] = n;
    m->n++;
    return 0;
}

void
cc__map_del(cc__map *m, cc__hnode *n)
{
    if (!m->nb)
        return;
    cc__hnode **pp = &m->b[n->h & (m->nb - 1)];
    for (; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            m->n--;
            return;
        }
}

cc__hnode *
cc__map_next(const cc__map *m, size_t *it, cc__hnode *cur)
{
    if (cur && cur->next)
        return cur->next;
    size_t i = cur ? *it + 1 : 0;
    for (; i < m->nb; i++)
        if (m->b[i]) {
            *it = i;
            return m->b[i];
        }
    return NULL;
}
