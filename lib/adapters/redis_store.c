/*
 * lib/adapters/redis_store.c - a durable store (chatcore/store.h) on Redis,
 * for distributed mode: cc_store_redis_open (chatcore/redis.h). Part of
 * libchatcore-redis; it uses only the public API of libchatcore and of the
 * Redis adapter (cc_redis_cmd), so it includes no lib/ header.
 *
 * Keys (<ns> is the namespace, "cc:s:" by default; {t} is the tenant id
 * in literal braces, which keeps keys unambiguous as ids may hold ':'):
 *
 *   <ns>meta               hash   key -> value
 *   <ns>tenants            hash   tenant id -> json
 *   <ns>tids               set    tenant ids that may have data (load)
 *   <ns>agents:{t}         hash   agent id -> json
 *   <ns>s:{t}:<sid>        hash   the session row: v a st ps c u si ls p
 *                                 cr cb (visitor, agent, state, prev_state,
 *                                 created, updated, since, last_seq,
 *                                 preview, close_reason, closed_by)
 *   <ns>all:{t}            set    session ids with any key (tenant_del)
 *   <ns>upd:{t}            zset   session id by `updated` (list, any state)
 *   <ns>st:{t}:<n>         zset   session id by `updated`, state n
 *   <ns>vis:{t}:<visitor>  set    session ids of a visitor
 *   <ns>m:{t}:<sid>        list   messages, index seq-1, each
 *                                 "<ts> <kind> <fromlen> <cidlen|-1>:"
 *                                 followed by from, cid and the body
 *   <ns>cid:{t}:<sid>      hash   "<from>\0<cid>" -> "<seq> <token>"
 *                                 (the append that stored it; older
 *                                 rows hold "<seq>" alone)
 *   <ns>cur:{t}:<sid>      hash   user -> "<acked> <read>"
 *   <ns>tok:<token>        string "<seq> <ts> <dup>" of one msg_append
 *                                 without a cid
 *
 * Every write is one Lua script (or one plain command), so a crash never
 * leaves half of one, and the indexes move in the script that changes
 * what they index. Scripts build their keys from the namespace and ids
 * they are given, so the store needs a single Redis (or a proxy that sends
 * everything to one), not a Cluster.
 *
 * Order. Operations queue on the store's own FIFO; commands go out in that
 * order on the adapter's single pipelined connection (at most WIN_CMDS /
 * WIN_BYTES outstanding), replies come back in order, and callbacks run
 * strictly from the head of the FIFO. A load takes several round trips
 * and holds everything behind it until it is done.
 *
 * Retries. Every operation is idempotent: puts overwrite, cursors take the
 * maximum, deletes delete, and an append carries a random token under
 * which its script remembers its result (TOKEN_TTL_S; an append with a
 * cid keeps the token beside the seq in the cid hash instead), so a
 * re-run answers what the first run did. When a command fails with
 * CC_ECONNRESET, CC_ETIMEDOUT, or a transient error reply (LOADING, BUSY,
 * NOSCRIPT, ...), the store stops sending, waits until every outstanding
 * command has answered, and sends again from the first operation that
 * did not complete, in order, after a backoff. Nothing is sent behind outstanding
 * commands while the adapter is not ready: a command queued in the
 * adapter then could reach a new connection before an earlier one fails
 * and is re-sent, and run out of order. Once an append's callback ran its
 * token is no longer needed: the next append's script deletes it, or a
 * flush when the store has been idle for a second or closes (so the TTL
 * only covers tokens of a process that died, or of a lost flush).
 *
 * Scripts go as EVAL while no command of the same script is outstanding
 * and as EVALSHA behind one (which, on the same connection, has loaded
 * it): so a Redis restart never answers NOSCRIPT to a pipelined command.
 * NOSCRIPT can still come after an operator's SCRIPT FLUSH; it is retried
 * like a lost connection.
 */
#include <mbedtls/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatcore/redis.h"
#include "chatcore/store.h"

#define NS_MAX 64
#define NS_DEFAULT "cc:s:"
#define ID_CAP 65
#define FROM_MAX 79
#define CID_MAX 259
/* the dispatcher's bound (lib/store/store.h CC__STORE_MAX_PENDING) */
#define PENDING_MAX 200000
/* commands and bytes outstanding at once (below the adapter's defaults
 * for its disconnected queue: 10,000 commands, 16 MiB) */
#define WIN_CMDS 512
#define WIN_BYTES ((size_t)4 << 20)
#define RETRY_MIN_MS 10
#define RETRY_MAX_MS 1000
/* close: cancel what is left after this long without progress */
#define CLOSE_GRACE_MS 5000
/* how long an append's result is remembered for a re-run (24 h): longer
 * than any outage the store is expected to wait through */
#define TOKEN_TTL_S "86400"
#define TOKEN_CAP 52
/* tokens of completed appends waiting to be deleted by the next append,
 * or by a flush once the store has been idle for IDLE_FORGET_MS */
#define RING_N 1024
#define FORGET_PER_CMD 32
#define FORGET_FLUSH_MAX 128
#define IDLE_FORGET_MS 1000
#define LOAD_PAGE 500
#define KEY_CAP 320
#define ARGS_MAX 56
#define NSESS_FIELDS 11

/* ------------------------------------------------------------------ */
/* Scripts                                                             */

enum {
    SCR_SPUT, SCR_APPEND, SCR_CURSOR, SCR_TPUT, SCR_APUT, SCR_TDEL,
    SCR_READ, SCR_LIST, SCR_LTEN, SCR_LPAGE, SCR__N
};

/* session_put. ARGV: ns t id v a st ps c u si p cr cb. A new row starts
 * at last_seq 0; the old state's and visitor's index entries go. */
static const char s_sput[] =
    "local ns, t, id = ARGV[1], ARGV[2], ARGV[3]\n"
    "local T = '{' .. t .. '}'\n"
    "local k = ns .. 's:' .. T .. ':' .. id\n"
    "local old = redis.call('HMGET', k, 'st', 'v')\n"
    "if old[1] then\n"
    "  if old[1] ~= ARGV[6] then\n"
    "    redis.call('ZREM', ns .. 'st:' .. T .. ':' .. old[1], id)\n"
    "  end\n"
    "  if old[2] and old[2] ~= ARGV[4] then\n"
    "    redis.call('SREM', ns .. 'vis:' .. T .. ':' .. old[2], id)\n"
    "  end\n"
    "else\n"
    "  redis.call('HSET', k, 'ls', '0')\n"
    "end\n"
    "redis.call('HSET', k, 'v', ARGV[4], 'a', ARGV[5], 'st', ARGV[6],\n"
    "  'ps', ARGV[7], 'c', ARGV[8], 'u', ARGV[9], 'si', ARGV[10],\n"
    "  'p', ARGV[11], 'cr', ARGV[12], 'cb', ARGV[13])\n"
    "redis.call('ZADD', ns .. 'upd:' .. T, ARGV[9], id)\n"
    "redis.call('ZADD', ns .. 'st:' .. T .. ':' .. ARGV[6], ARGV[9], id)\n"
    "redis.call('SADD', ns .. 'vis:' .. T .. ':' .. ARGV[4], id)\n"
    "redis.call('SADD', ns .. 'all:' .. T, id)\n"
    "redis.call('SADD', ns .. 'tids', t)\n"
    "return 1\n";

/* msg_append. ARGV: ns t id token from kind ts hascid cid body ttl
 * forget-tokens... Answers "seq ts dup", or "E" (no such session).
 * An append with a cid remembers its token beside its seq in the cid
 * hash, so a re-run of it is told apart from another send of the same
 * cid without a token key of its own; one without a cid keeps its answer
 * under tok:<token> for TOKEN_TTL_S. */
static const char s_append[] =
    "local ns, t, id = ARGV[1], ARGV[2], ARGV[3]\n"
    "if #ARGV >= 12 then\n"
    "  local dk = {}\n"
    "  for i = 12, #ARGV do dk[#dk + 1] = ns .. 'tok:' .. ARGV[i] end\n"
    "  redis.call('DEL', unpack(dk))\n"
    "end\n"
    "local T = '{' .. t .. '}'\n"
    "local mk = ns .. 'm:' .. T .. ':' .. id\n"
    "local from, ts = ARGV[5], ARGV[7]\n"
    "local ck, f, cid, cl, tk = nil, nil, '', -1, nil\n"
    "if ARGV[8] == '1' then\n"
    "  ck = ns .. 'cid:' .. T .. ':' .. id\n"
    "  cid = ARGV[9]\n"
    "  cl = #cid\n"
    "  f = from .. '\\0' .. cid\n"
    "  local v = redis.call('HGET', ck, f)\n"
    "  if v then\n"
    "    local seq, tok = string.match(v, '^(%d+) ?(.*)$')\n"
    "    if tok == ARGV[4] then return seq .. ' ' .. ts .. ' 0' end\n"
    "    local m = redis.call('LINDEX', mk, tonumber(seq) - 1)\n"
    "    local ots = m and string.match(m, '^%d+') or '0'\n"
    "    return seq .. ' ' .. ots .. ' 1'\n"
    "  end\n"
    "else\n"
    "  tk = ns .. 'tok:' .. ARGV[4]\n"
    "  local prev = redis.call('GET', tk)\n"
    "  if prev then return prev end\n"
    "end\n"
    "local k = ns .. 's:' .. T .. ':' .. id\n"
    "local row = redis.call('HMGET', k, 'st', 'ls')\n"
    "if not row[1] then return 'E' end\n"
    "local seq = string.format('%d', tonumber(row[2] or '0') + 1)\n"
    "redis.call('RPUSH', mk, ts .. ' ' .. ARGV[6] .. ' ' .. #from .. ' ' ..\n"
    "  cl .. ':' .. from .. cid .. ARGV[10])\n"
    "if ck then redis.call('HSET', ck, f, seq .. ' ' .. ARGV[4]) end\n"
    "redis.call('HSET', k, 'ls', seq, 'u', ts)\n"
    "redis.call('ZADD', ns .. 'upd:' .. T, ts, id)\n"
    "redis.call('ZADD', ns .. 'st:' .. T .. ':' .. row[1], ts, id)\n"
    "local res = seq .. ' ' .. ts .. ' 0'\n"
    "if tk then redis.call('SET', tk, res, 'EX', ARGV[11]) end\n"
    "return res\n";

/* cursor_put. ARGV: ns t id user acked read. Decimal strings compare
 * exactly (length, then bytes): Lua numbers are doubles. */
static const char s_cursor[] =
    "local function gt(a, b)\n"
    "  if #a ~= #b then return #a > #b end\n"
    "  for i = 1, #a do\n"
    "    local x, y = a:byte(i), b:byte(i)\n"
    "    if x ~= y then return x > y end\n"
    "  end\n"
    "  return false\n"
    "end\n"
    "local ns, t, id, u = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local T = '{' .. t .. '}'\n"
    "local k = ns .. 'cur:' .. T .. ':' .. id\n"
    "local a, r = ARGV[5], ARGV[6]\n"
    "local old = redis.call('HGET', k, u)\n"
    "if old then\n"
    "  local oa, orr = string.match(old, '^(%d+) (%d+)$')\n"
    "  if oa then\n"
    "    if gt(oa, a) then a = oa end\n"
    "    if gt(orr, r) then r = orr end\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', k, u, a .. ' ' .. r)\n"
    "redis.call('SADD', ns .. 'all:' .. T, id)\n"
    "redis.call('SADD', ns .. 'tids', t)\n"
    "return 1\n";

/* tenant_put. ARGV: ns t json */
static const char s_tput[] =
    "redis.call('HSET', ARGV[1] .. 'tenants', ARGV[2], ARGV[3])\n"
    "redis.call('SADD', ARGV[1] .. 'tids', ARGV[2])\n"
    "return 1\n";

/* agent_put. ARGV: ns t id json */
static const char s_aput[] =
    "redis.call('HSET', ARGV[1] .. 'agents:{' .. ARGV[2] .. '}', ARGV[3],\n"
    "  ARGV[4])\n"
    "redis.call('SADD', ARGV[1] .. 'tids', ARGV[2])\n"
    "return 1\n";

/* tenant_del. ARGV: ns t. UNLINK frees big values off the main thread. */
static const char s_tdel[] =
    "local ns, t = ARGV[1], ARGV[2]\n"
    "local T = '{' .. t .. '}'\n"
    "local all = ns .. 'all:' .. T\n"
    "for _, id in ipairs(redis.call('SMEMBERS', all)) do\n"
    "  local k = ns .. 's:' .. T .. ':' .. id\n"
    "  local v = redis.call('HGET', k, 'v')\n"
    "  if v then redis.call('UNLINK', ns .. 'vis:' .. T .. ':' .. v) end\n"
    "  redis.call('UNLINK', k, ns .. 'm:' .. T .. ':' .. id,\n"
    "    ns .. 'cid:' .. T .. ':' .. id, ns .. 'cur:' .. T .. ':' .. id)\n"
    "end\n"
    "redis.call('UNLINK', all, ns .. 'upd:' .. T, ns .. 'agents:' .. T)\n"
    "for s = 1, 5 do redis.call('UNLINK', ns .. 'st:' .. T .. ':' .. s) end\n"
    "redis.call('HDEL', ns .. 'tenants', t)\n"
    "redis.call('SREM', ns .. 'tids', t)\n"
    "return 1\n";

/* msgs_read. ARGV: ns t id after limit tail. Answers {first seq, more,
 * {messages}}. */
static const char s_read[] =
    "local mk = ARGV[1] .. 'm:{' .. ARGV[2] .. '}:' .. ARGV[3]\n"
    "local n = redis.call('LLEN', mk)\n"
    "local after, lim = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "if after >= n then return {0, 0, {}} end\n"
    "local lo, hi, more\n"
    "if ARGV[6] == '1' then\n"
    "  lo = n - lim\n"
    "  if lo < after then lo = after end\n"
    "  hi = n - 1\n"
    "  more = 0\n"
    "  if lo > after then more = 1 end\n"
    "else\n"
    "  lo = after\n"
    "  hi = after + lim - 1\n"
    "  more = 1\n"
    "  if hi >= n - 1 then hi = n - 1; more = 0 end\n"
    "end\n"
    "return {lo + 1, more, redis.call('LRANGE', mk, lo, hi)}\n";

/* sessions_list. ARGV: ns t state limit hasvisitor visitor. Answers id
 * and the 11 row fields per session, `updated` descending, then id
 * descending (byte order, as the sorted sets order equal scores; Lua's
 * own string order would follow the server's locale). */
static const char s_list[] =
    "local ns, t, state = ARGV[1], ARGV[2], ARGV[3]\n"
    "local T = '{' .. t .. '}'\n"
    "local lim = tonumber(ARGV[4])\n"
    "local F = {'v','a','st','ps','c','u','si','ls','p','cr','cb'}\n"
    "local function bcmp(a, b)\n"
    "  for i = 1, math.min(#a, #b) do\n"
    "    local x, y = a:byte(i), b:byte(i)\n"
    "    if x ~= y then return x < y and -1 or 1 end\n"
    "  end\n"
    "  if #a == #b then return 0 end\n"
    "  return #a < #b and -1 or 1\n"
    "end\n"
    "local rows = {}\n"
    "if ARGV[5] == '1' then\n"
    "  local ids = redis.call('SMEMBERS', ns .. 'vis:' .. T .. ':' .. ARGV[6])\n"
    "  for _, id in ipairs(ids) do\n"
    "    local r = redis.call('HMGET', ns .. 's:' .. T .. ':' .. id,\n"
    "      unpack(F))\n"
    "    if r[3] and (state == '0' or r[3] == state) then\n"
    "      rows[#rows + 1] = {id, r}\n"
    "    end\n"
    "  end\n"
    "  table.sort(rows, function(x, y)\n"
    "    local a, b = x[2][6] or '0', y[2][6] or '0'\n"
    "    if #a ~= #b then return #a > #b end\n"
    "    local c = bcmp(a, b)\n"
    "    if c ~= 0 then return c > 0 end\n"
    "    return bcmp(x[1], y[1]) > 0\n"
    "  end)\n"
    "else\n"
    "  local key = ns .. 'upd:' .. T\n"
    "  if state ~= '0' then key = ns .. 'st:' .. T .. ':' .. state end\n"
    "  for _, id in ipairs(redis.call('ZREVRANGE', key, 0, lim - 1)) do\n"
    "    local r = redis.call('HMGET', ns .. 's:' .. T .. ':' .. id,\n"
    "      unpack(F))\n"
    "    if r[3] then rows[#rows + 1] = {id, r} end\n"
    "  end\n"
    "end\n"
    "local out = {}\n"
    "for i = 1, math.min(#rows, lim) do\n"
    "  out[#out + 1] = rows[i][1]\n"
    "  for j = 1, 11 do out[#out + 1] = rows[i][2][j] end\n"
    "end\n"
    "return out\n";

/* load: the tenants. ARGV: ns. Answers {tenants hash, tids set}. */
static const char s_lten[] =
    "return {redis.call('HGETALL', ARGV[1] .. 'tenants'),\n"
    "  redis.call('SMEMBERS', ARGV[1] .. 'tids')}\n";

/* load: a page of one tenant's sessions in one state. ARGV: ns t state
 * offset count mode. Answers {n ids, then per session: mode 1 the id and
 * 11 row fields, mode 2 (id, user, "acked read") per cursor}. */
static const char s_lpage[] =
    "local ns, T = ARGV[1], '{' .. ARGV[2] .. '}'\n"
    "local off, cnt = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local ids = redis.call('ZRANGE', ns .. 'st:' .. T .. ':' .. ARGV[3],\n"
    "  off, off + cnt - 1)\n"
    "local out = {#ids}\n"
    "for _, id in ipairs(ids) do\n"
    "  if ARGV[6] == '1' then\n"
    "    local r = redis.call('HMGET', ns .. 's:' .. T .. ':' .. id, 'v',\n"
    "      'a', 'st', 'ps', 'c', 'u', 'si', 'ls', 'p', 'cr', 'cb')\n"
    "    out[#out + 1] = id\n"
    "    for j = 1, 11 do out[#out + 1] = r[j] end\n"
    "  else\n"
    "    local h = redis.call('HGETALL', ns .. 'cur:' .. T .. ':' .. id)\n"
    "    for j = 1, #h, 2 do\n"
    "      out[#out + 1] = id\n"
    "      out[#out + 1] = h[j]\n"
    "      out[#out + 1] = h[j + 1]\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* the idle flush of tokens. ARGV: ns token... */
static const char s_forget[] =
    "for i = 2, #ARGV do redis.call('DEL', ARGV[1] .. 'tok:' .. ARGV[i]) end\n"
    "return 1\n";

static const char *const scripts[SCR__N] = {
    [SCR_SPUT] = s_sput,     [SCR_APPEND] = s_append,
    [SCR_CURSOR] = s_cursor, [SCR_TPUT] = s_tput,
    [SCR_APUT] = s_aput,     [SCR_TDEL] = s_tdel,
    [SCR_READ] = s_read,     [SCR_LIST] = s_list,
    [SCR_LTEN] = s_lten,     [SCR_LPAGE] = s_lpage,
};

static const double hist_bounds[CC_STORE_HIST_N - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};

/* ------------------------------------------------------------------ */
/* Operations                                                          */

enum op_kind {
    OP_LOAD = 1,
    OP_META_PUT,
    OP_TENANT_PUT,
    OP_TENANT_DEL,
    OP_AGENT_PUT,
    OP_AGENT_DEL,
    OP_SESSION_PUT,
    OP_MSG_APPEND,
    OP_CURSOR_PUT,
    OP_MSGS_READ,
    OP_SESSION_GET,
    OP_SESSIONS_LIST,
    OP_CURSOR_GET,
    OP_BARRIER
};

/* OS_QUEUED: (again) to be sent; OS_SENT: its command is outstanding (it
 * has a ticket); OS_DONE: res is final, the callback is due. */
enum { OS_QUEUED, OS_SENT, OS_DONE };

/* load phases, in the order SQLite's load reads them */
enum { P_META, P_TENANTS, P_AGENTS, P_SESS, P_CURS, P_NOOP, P_END };

typedef struct load {
    cc_store_loader l;
    int phase;
    char (*tids)[ID_CAP];   /* the chosen tenants, sorted */
    size_t ntids, tids_cap;
    size_t ti;              /* tenant of the current page */
    int state;              /* CC_STORE_NEW..OFFLINE */
    uint64_t off;
} load;

typedef struct op {
    struct op *next;
    size_t size;            /* bytes of this allocation */
    int kind;
    int state;              /* OS_* */
    cc_store_cb cb;
    void *data;
    const char *s[4];       /* string arguments, copied into buf */
    size_t n[4];
    uint64_t u[2];
    int i[3];
    const cc_store_session *rec;   /* session_put: the copy in buf */
    load *ld;                      /* load_async: in buf */
    char tok[TOKEN_CAP];           /* msg_append: the idempotence token */
    cc_store_result res;
    void *mem;                     /* result arrays, one block */
    size_t mem_size;
    max_align_t buf[];
} op;

struct rs;

/* One outstanding command. Separate from the op so that a store that
 * gave up on its commands (close) can go while the adapter still holds
 * them: the reply then finds st NULL and only frees the ticket. */
typedef struct ticket {
    struct ticket *prev, *next;
    struct rs *st;
    cc_ctx *ctx;
    op *o;
    int script;             /* SCR_* or -1 */
    size_t bytes;
    uint64_t t0;            /* uv_hrtime at send */
} ticket;

typedef struct rs {
    cc_ctx *ctx;
    cc_redis *r;
    char ns[NS_MAX + 1];
    size_t nslen;
    char sha[SCR__N][41];
    char inst[33];          /* 128 random bits: tokens of this store */
    uint64_t tokn;
    /* the FIFO */
    op *head, *tail;
    op *next_send;          /* first op not sent (or a load in progress) */
    size_t npending;
    /* outstanding commands */
    ticket out;             /* list sentinel */
    size_t nout, outbytes;
    int script_out[SCR__N];
    int recovering;         /* a command failed: wait for the rest */
    unsigned backoff_ms;
    int reaping;
    /* tokens of completed appends, to delete */
    char ring[RING_N][TOKEN_CAP];
    size_t rhead, rn;
    uv_timer_t retry;       /* active: hold sending until it fires */
    uv_timer_t kick;        /* deferred completions */
    uv_timer_t closet;      /* close grace */
    uv_timer_t idle;        /* flush the tokens when idle */
    int handles;
    int closing, finishing;
    void (*done)(void *data);
    void *done_data;
    uv_mutex_t mu;          /* stats: read from any thread */
    cc_store_stats stats;
} rs;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static size_t
fmt_u64(char *p, uint64_t v)
{
    char t[24];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = t[n - 1 - i];
    p[n] = '\0';
    return n;
}

static int
parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* An integer reply, or a decimal string one; nil reads as 0. */
static int
rep_u64(const cc_redis_reply *r, uint64_t *out)
{
    size_t n;
    const char *s;
    switch (cc_redis_reply_type(r)) {
    case CC_REDIS_REPLY_INT: {
        int64_t v = cc_redis_reply_int(r);
        if (v < 0)
            return -1;
        *out = (uint64_t)v;
        return 0;
    }
    case CC_REDIS_REPLY_STR:
        s = cc_redis_reply_str(r, &n);
        return parse_u64(s, n, out);
    case CC_REDIS_REPLY_NIL:
        *out = 0;
        return 0;
    default:
        return -1;
    }
}

/* A string (or nil: "") into a fixed field; values were bounded on the
 * way in, the cut only guards against keys edited by hand. */
static void
rep_copy(const cc_redis_reply *r, char *dst, size_t cap)
{
    size_t n = 0;
    const char *s = cc_redis_reply_type(r) == CC_REDIS_REPLY_STR
                        ? cc_redis_reply_str(r, &n)
                        : NULL;
    if (!s)
        n = 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
}

static int
is_str(const cc_redis_reply *r)
{
    return cc_redis_reply_type(r) == CC_REDIS_REPLY_STR;
}

static int
id_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
           c == '-';
}

static double
now_secs_since(uint64_t t0)
{
    return (double)(uv_hrtime() - t0) / 1e9;
}

static int
hist_bucket(double secs)
{
    int i = 0;
    while (i < CC_STORE_HIST_N - 1 && secs > hist_bounds[i])
        i++;
    return i;
}

/* ------------------------------------------------------------------ */
/* Building commands                                                   */

typedef struct cmdv {
    int argc;
    const char *argv[ARGS_MAX];
    size_t len[ARGS_MAX];
    char num[8][24];
    int nnum;
    char key[2][KEY_CAP];
    int nkey;
    int script;             /* SCR_* or -1 */
} cmdv;

static void
cv_init(cmdv *c)
{
    c->argc = 0;
    c->nnum = 0;
    c->nkey = 0;
    c->script = -1;
}

static void
cv_argn(cmdv *c, const char *s, size_t n)
{
    c->argv[c->argc] = s;
    c->len[c->argc] = n;
    c->argc++;
}

static void
cv_arg(cmdv *c, const char *s)
{
    cv_argn(c, s, strlen(s));
}

static void
cv_u64(cmdv *c, uint64_t v)
{
    char *p = c->num[c->nnum++];
    cv_argn(c, p, fmt_u64(p, v));
}

static void
cv_i64(cmdv *c, int64_t v)
{
    char *p = c->num[c->nnum++];
    size_t n = 0;
    if (v < 0) {
        p[n++] = '-';
        cv_argn(c, p, n + fmt_u64(p + n, (uint64_t)0 - (uint64_t)v));
        return;
    }
    cv_argn(c, p, fmt_u64(p, (uint64_t)v));
}

/* <ns><kind>[{t}[:<id>]] as one argument */
static void
cv_key(cmdv *c, const rs *st, const char *kind, const char *t,
       const char *id)
{
    char *p = c->key[c->nkey++];
    int n = snprintf(p, KEY_CAP, "%s%s%s%s%s%s", st->ns, kind,
                     t ? "{" : "", t ? t : "", t ? "}" : "",
                     id ? ":" : "");
    size_t len = (size_t)n;
    if (id) {
        size_t il = strlen(id);
        memcpy(p + len, id, il + 1);
        len += il;
    }
    cv_argn(c, p, len);
}

/* EVAL|EVALSHA <body|sha> 0 <ns>: the first two are set at send */
static void
cv_script(cmdv *c, const rs *st, int script)
{
    c->script = script;
    cv_arg(c, "EVAL");
    cv_arg(c, scripts[script]);
    cv_arg(c, "0");
    cv_argn(c, st->ns, st->nslen);
}

/* ------------------------------------------------------------------ */
/* The FIFO                                                            */

static void reap(rs *st);
static void pump(rs *st);
static void finish(rs *st);
static void on_close_timeout(uv_timer_t *t);
static void on_reply(cc_redis *r, int status, const cc_redis_reply *rep,
                     void *data);

static void
free_results(rs *st, op *o)
{
    if (o->mem)
        cc_ctx_free(st->ctx, o->mem, o->mem_size);
    o->mem = NULL;
    o->mem_size = 0;
    o->res.msgs = NULL;
    o->res.nmsgs = 0;
    o->res.sess = NULL;
    o->res.nsess = 0;
}

static void
op_free(rs *st, op *o)
{
    free_results(st, o);
    if (o->ld && o->ld->tids)
        cc_ctx_free(st->ctx, o->ld->tids,
                    o->ld->tids_cap * sizeof *o->ld->tids);
    cc_ctx_free(st->ctx, o, o->size);
}

static void
on_kick(uv_timer_t *t)
{
    rs *st = t->data;
    reap(st);
    pump(st);
}

static void
kick(rs *st)
{
    if (!st->finishing)
        uv_timer_start(&st->kick, on_kick, 0, 0);
}

static void
on_retry(uv_timer_t *t)
{
    pump(t->data);
}

static void
arm_retry(rs *st)
{
    unsigned ms = st->backoff_ms ? st->backoff_ms : RETRY_MIN_MS;
    st->backoff_ms = ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : ms * 2;
    uv_timer_start(&st->retry, on_retry, ms, 0);
}

/* Delete the remembered tokens of completed appends: their ops will
 * never be sent again, so this needs no place in the FIFO. Fire and
 * forget, as EVAL (the script is tiny): a lost one leaves its tokens to
 * their TTL. Only on a ready connection, so as not to fill the adapter's
 * queue while Redis is away. */
static void
forget_flush(rs *st)
{
    const char *argv[4 + FORGET_FLUSH_MAX];
    size_t len[4 + FORGET_FLUSH_MAX];
    while (st->rn && cc_redis_ready(st->r)) {
        size_t k = st->rn < FORGET_FLUSH_MAX ? st->rn : FORGET_FLUSH_MAX;
        argv[0] = "EVAL";
        argv[1] = s_forget;
        argv[2] = "0";
        argv[3] = st->ns;
        for (size_t i = 0; i < k; i++)
            argv[4 + i] = st->ring[(st->rhead + i) % RING_N];
        for (size_t i = 0; i < 4 + k; i++)
            len[i] = strlen(argv[i]);
        if (cc_redis_cmd(st->r, NULL, NULL, (int)(4 + k), argv, len) != 0)
            return;
        st->rhead = (st->rhead + k) % RING_N;
        st->rn -= k;
    }
}

static void
on_idle(uv_timer_t *t)
{
    rs *st = t->data;
    if (!st->head)
        forget_flush(st);
}

/* Run the callbacks of the completed ops at the head, in order. */
static void
reap(rs *st)
{
    if (st->reaping)
        return;   /* the outer loop goes on */
    st->reaping = 1;
    size_t n = 0;
    while (st->head && st->head->state == OS_DONE) {
        op *o = st->head;
        st->head = o->next;
        if (!st->head)
            st->tail = NULL;
        if (st->next_send == o)
            st->next_send = o->next;
        /* its token is not needed once the result is out (an append
         * with a cid keeps it in the cid hash, not under a key) */
        if (o->kind == OP_MSG_APPEND && o->res.rc == 0 && !o->s[2]) {
            size_t at = (st->rhead + st->rn) % RING_N;
            memcpy(st->ring[at], o->tok, TOKEN_CAP);
            if (st->rn < RING_N)
                st->rn++;
            else
                st->rhead = (st->rhead + 1) % RING_N;
        }
        st->npending--;
        uv_mutex_lock(&st->mu);
        st->stats.ops++;
        st->stats.pending--;
        uv_mutex_unlock(&st->mu);
        n++;
        if (o->cb)
            o->cb(&o->res, o->data);
        op_free(st, o);
    }
    st->reaping = 0;
    if (!st->head && st->rn && !st->closing)
        uv_timer_start(&st->idle, on_idle, IDLE_FORGET_MS, 0);
    if (st->closing && !st->finishing) {
        if (!st->head) {
            forget_flush(st);
            finish(st);
        }
        else if (n)
            uv_timer_start(&st->closet, on_close_timeout, CLOSE_GRACE_MS,
                           0);
    }
}

/* Give up on the outstanding commands: their replies, whenever they come,
 * only free their tickets. */
static void
detach_all(rs *st)
{
    ticket *t = st->out.next;
    while (t != &st->out) {
        ticket *next = t->next;
        t->st = NULL;
        t->prev = t->next = NULL;
        t = next;
    }
    st->out.next = st->out.prev = &st->out;
    st->nout = 0;
    st->outbytes = 0;
    memset(st->script_out, 0, sizeof st->script_out);
}

static void
on_handle_closed(uv_handle_t *h)
{
    rs *st = h->data;
    if (--st->handles)
        return;
    void (*done)(void *) = st->done;
    void *data = st->done_data;
    cc_ctx *ctx = st->ctx;
    uv_mutex_destroy(&st->mu);
    cc_ctx_free(ctx, st, sizeof *st);
    if (done)
        done(data);
}

/* Closing with an empty FIFO: close the handles, then free and tell. */
static void
finish(rs *st)
{
    if (st->finishing)
        return;
    st->finishing = 1;
    detach_all(st);
    st->handles = 4;
    uv_close((uv_handle_t *)&st->retry, on_handle_closed);
    uv_close((uv_handle_t *)&st->kick, on_handle_closed);
    uv_close((uv_handle_t *)&st->closet, on_handle_closed);
    uv_close((uv_handle_t *)&st->idle, on_handle_closed);
}

/* Close took too long without progress: cancel what is left, in order. */
static void
on_close_timeout(uv_timer_t *t)
{
    rs *st = t->data;
    detach_all(st);
    uv_timer_stop(&st->retry);
    for (op *o = st->head; o; o = o->next) {
        if (o->state != OS_DONE) {
            free_results(st, o);
            memset(&o->res, 0, sizeof o->res);
            o->res.rc = CC_ECANCELED;
            o->state = OS_DONE;
        }
    }
    st->next_send = NULL;
    reap(st);
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */

static int build_load(rs *st, op *o, cmdv *c);

static int
build(rs *st, op *o, cmdv *c, size_t *nforget)
{
    cv_init(c);
    *nforget = 0;
    switch (o->kind) {
    case OP_META_PUT:
        cv_arg(c, "HSET");
        cv_key(c, st, "meta", NULL, NULL);
        cv_argn(c, o->s[0], o->n[0]);
        cv_argn(c, o->s[1], o->n[1]);
        return 0;
    case OP_TENANT_PUT:
        cv_script(c, st, SCR_TPUT);
        cv_argn(c, o->s[0], o->n[0]);
        cv_argn(c, o->s[1], o->n[1]);
        return 0;
    case OP_TENANT_DEL:
        cv_script(c, st, SCR_TDEL);
        cv_argn(c, o->s[0], o->n[0]);
        return 0;
    case OP_AGENT_PUT:
        cv_script(c, st, SCR_APUT);
        for (int i = 0; i < 3; i++)
            cv_argn(c, o->s[i], o->n[i]);
        return 0;
    case OP_AGENT_DEL:
        cv_arg(c, "HDEL");
        cv_key(c, st, "agents:", o->s[0], NULL);
        cv_argn(c, o->s[1], o->n[1]);
        return 0;
    case OP_SESSION_PUT: {
        const cc_store_session *r = o->rec;
        cv_script(c, st, SCR_SPUT);
        cv_arg(c, r->tenant);
        cv_arg(c, r->id);
        cv_arg(c, r->visitor);
        cv_arg(c, r->agent);
        cv_u64(c, (uint64_t)r->state);
        cv_u64(c, r->prev_state > 0 ? (uint64_t)r->prev_state : 0);
        cv_u64(c, r->created);
        cv_u64(c, r->updated);
        cv_u64(c, r->since);
        cv_arg(c, r->preview);
        cv_arg(c, r->close_reason);
        cv_arg(c, r->closed_by);
        return 0;
    }
    case OP_MSG_APPEND:
        cv_script(c, st, SCR_APPEND);
        cv_argn(c, o->s[0], o->n[0]);           /* tenant */
        cv_argn(c, o->s[1], o->n[1]);           /* session */
        cv_arg(c, o->tok);
        cv_argn(c, o->s[3], o->n[3]);           /* from */
        cv_i64(c, o->i[0]);                     /* kind */
        cv_u64(c, o->u[0]);                     /* ts */
        cv_arg(c, o->s[2] ? "1" : "0");
        if (o->s[2])
            cv_argn(c, o->s[2], o->n[2]);
        else
            cv_argn(c, "", 0);
        cv_argn(c, (const char *)o->buf, o->u[1]);   /* body */
        cv_arg(c, TOKEN_TTL_S);
        for (size_t k = 0; k < st->rn && k < FORGET_PER_CMD; k++)
            cv_arg(c, st->ring[(st->rhead + k) % RING_N]);
        *nforget = st->rn < FORGET_PER_CMD ? st->rn : FORGET_PER_CMD;
        return 0;
    case OP_CURSOR_PUT:
        cv_script(c, st, SCR_CURSOR);
        for (int i = 0; i < 3; i++)
            cv_argn(c, o->s[i], o->n[i]);
        cv_u64(c, o->u[0]);
        cv_u64(c, o->u[1]);
        return 0;
    case OP_MSGS_READ:
        cv_script(c, st, SCR_READ);
        cv_argn(c, o->s[0], o->n[0]);
        cv_argn(c, o->s[1], o->n[1]);
        cv_u64(c, o->u[0]);
        cv_u64(c, (uint64_t)o->i[0]);
        cv_arg(c, o->i[1] ? "1" : "0");
        return 0;
    case OP_SESSION_GET:
        cv_arg(c, "HMGET");
        cv_key(c, st, "s:", o->s[0], o->s[1]);
        cv_arg(c, "v");
        cv_arg(c, "a");
        cv_arg(c, "st");
        cv_arg(c, "ps");
        cv_arg(c, "c");
        cv_arg(c, "u");
        cv_arg(c, "si");
        cv_arg(c, "ls");
        cv_arg(c, "p");
        cv_arg(c, "cr");
        cv_arg(c, "cb");
        return 0;
    case OP_SESSIONS_LIST:
        cv_script(c, st, SCR_LIST);
        cv_argn(c, o->s[0], o->n[0]);
        cv_u64(c, (uint64_t)o->i[0]);
        cv_u64(c, (uint64_t)o->i[1]);
        cv_arg(c, o->s[1] ? "1" : "0");
        if (o->s[1])
            cv_argn(c, o->s[1], o->n[1]);
        else
            cv_argn(c, "", 0);
        return 0;
    case OP_CURSOR_GET:
        cv_arg(c, "HGET");
        cv_key(c, st, "cur:", o->s[0], o->s[1]);
        cv_argn(c, o->s[2], o->n[2]);
        return 0;
    case OP_BARRIER:
        cv_arg(c, "PING");
        return 0;
    case OP_LOAD:
        return build_load(st, o, c);
    }
    return CC_EINVAL;
}

/* Send o's command (or its load's next step). 0, or the adapter's code:
 * CC_ENOBUFS/CC_ENOMEM (try again later) or a final one. */
static int
send_op(rs *st, op *o)
{
    cmdv c;
    size_t nforget;
    int rc = build(st, o, &c, &nforget);
    if (rc)
        return rc;
    if (c.script >= 0 && st->script_out[c.script] > 0) {
        /* a command of this script runs before this one on the same
         * connection, so the script is loaded by then */
        c.argv[0] = "EVALSHA";
        c.len[0] = 7;
        c.argv[1] = st->sha[c.script];
        c.len[1] = 40;
    } else if (c.script >= 0) {
        c.len[1] = strlen(scripts[c.script]);
    }
    ticket *t = cc_ctx_alloc(st->ctx, sizeof *t);
    if (!t)
        return CC_ENOMEM;
    size_t bytes = 0;
    for (int i = 0; i < c.argc; i++)
        bytes += c.len[i] + 16;
    t->st = st;
    t->ctx = st->ctx;
    t->o = o;
    t->script = c.script;
    t->bytes = bytes;
    t->t0 = uv_hrtime();
    rc = cc_redis_cmd(st->r, on_reply, t, c.argc, c.argv, c.len);
    if (rc) {
        cc_ctx_free(st->ctx, t, sizeof *t);
        return rc;
    }
    t->next = &st->out;
    t->prev = st->out.prev;
    st->out.prev->next = t;
    st->out.prev = t;
    st->nout++;
    st->outbytes += bytes;
    if (c.script >= 0)
        st->script_out[c.script]++;
    o->state = OS_SENT;
    /* the tokens went out: the script deletes them */
    st->rhead = (st->rhead + nforget) % RING_N;
    st->rn -= nforget;
    return 0;
}

/* Send what may be sent, in order. */
static void
pump(rs *st)
{
    if (st->finishing)
        return;
    while (!st->recovering && !uv_is_active((uv_handle_t *)&st->retry)) {
        op *o = st->next_send;
        if (!o || o->state != OS_QUEUED)
            return;   /* nothing, or a load's step is out */
        if (st->nout >= WIN_CMDS || st->outbytes >= WIN_BYTES)
            return;
        /* behind outstanding commands, only on the connection they are
         * on: a command the adapter would queue now could run on the
         * next connection before they fail and are sent again */
        if (st->nout > 0 &&
            (!cc_redis_ready(st->r) || cc_redis_queued(st->r) > 0))
            return;
        int rc = send_op(st, o);
        if (rc == CC_ENOBUFS || rc == CC_ENOMEM) {
            if (st->nout == 0)
                arm_retry(st);
            return;   /* else the next reply pumps again */
        }
        if (rc) {
            /* the adapter is closing (or refused it): final */
            free_results(st, o);
            memset(&o->res, 0, sizeof o->res);
            o->res.rc = rc == CC_ECANCELED ? CC_ECANCELED : CC_EBACKEND;
            o->state = OS_DONE;
            st->next_send = o->next;
            kick(st);
            continue;
        }
        if (o->kind == OP_LOAD)
            return;   /* holds everything behind it until it is done */
        st->next_send = o->next;
    }
}

/* ------------------------------------------------------------------ */
/* Results                                                             */

/* One block for an op's result arrays. */
static void *
res_alloc(rs *st, op *o, size_t n)
{
    o->mem = cc_ctx_alloc(st->ctx, n ? n : 1);
    if (o->mem)
        o->mem_size = n ? n : 1;
    return o->mem;
}

/* Read the 11 row fields at arr[at..at+10] into s. */
static int
parse_row(const cc_redis_reply *arr, size_t at, cc_store_session *s)
{
    const cc_redis_reply *f[NSESS_FIELDS];
    for (size_t i = 0; i < NSESS_FIELDS; i++)
        f[i] = cc_redis_reply_at(arr, at + i);
    uint64_t state, prev, v;
    if (!is_str(f[2]) || rep_u64(f[2], &state) || state < CC_STORE_NEW ||
        state > CC_STORE_CLOSED || rep_u64(f[3], &prev) || prev > 5)
        return -1;
    rep_copy(f[0], s->visitor, sizeof s->visitor);
    rep_copy(f[1], s->agent, sizeof s->agent);
    s->state = (int)state;
    s->prev_state = (int)prev;
    if (rep_u64(f[4], &v))
        return -1;
    s->created = v;
    if (rep_u64(f[5], &v))
        return -1;
    s->updated = v;
    if (rep_u64(f[6], &v))
        return -1;
    s->since = v;
    if (rep_u64(f[7], &v))
        return -1;
    s->last_seq = v;
    rep_copy(f[8], s->preview, sizeof s->preview);
    rep_copy(f[9], s->close_reason, sizeof s->close_reason);
    rep_copy(f[10], s->closed_by, sizeof s->closed_by);
    return 0;
}

static void
set_id(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n >= ID_CAP)
        n = ID_CAP - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* One number of a stored message's header, up to `stop`. */
static int
take_num(const char **p, const char *e, char stop, int neg_ok, int64_t *v)
{
    const char *q = *p;
    int neg = 0;
    if (neg_ok && q < e && *q == '-') {
        neg = 1;
        q++;
    }
    const char *d = q;
    while (q < e && *q >= '0' && *q <= '9')
        q++;
    uint64_t u;
    if (q == e || *q != stop || parse_u64(d, (size_t)(q - d), &u) ||
        u > INT64_MAX)
        return -1;
    *v = neg ? -(int64_t)u : (int64_t)u;
    *p = q + 1;
    return 0;
}

/* "<ts> <kind> <fromlen> <cidlen>:<from><cid><body>" */
static int
parse_msg(const char *s, size_t n, cc_store_msg *m, size_t *boff)
{
    const char *p = s, *e = s + n;
    int64_t ts, kind, fl, cl;
    if (take_num(&p, e, ' ', 0, &ts) || take_num(&p, e, ' ', 1, &kind) ||
        take_num(&p, e, ' ', 0, &fl) || take_num(&p, e, ':', 1, &cl))
        return -1;
    if (fl > FROM_MAX || cl < -1 || cl > CID_MAX || kind > INT32_MAX ||
        kind < INT32_MIN)
        return -1;
    size_t rest = (size_t)(e - p);
    size_t need = (size_t)fl + (cl > 0 ? (size_t)cl : 0);
    if (rest < need)
        return -1;
    m->ts = (uint64_t)ts;
    m->kind = (int)kind;
    memcpy(m->from, p, (size_t)fl);
    m->from[fl] = '\0';
    p += fl;
    m->has_cid = cl >= 0;
    if (cl > 0)
        memcpy(m->cid, p, (size_t)cl);
    m->cid[cl > 0 ? cl : 0] = '\0';
    if (cl > 0)
        p += cl;
    *boff = (size_t)(p - s);
    return 0;
}

static int
res_msgs(rs *st, op *o, const cc_redis_reply *rep)
{
    uint64_t first, more;
    const cc_redis_reply *arr = cc_redis_reply_at(rep, 2);
    if (cc_redis_reply_type(rep) != CC_REDIS_REPLY_ARRAY ||
        cc_redis_reply_count(rep) != 3 ||
        rep_u64(cc_redis_reply_at(rep, 0), &first) ||
        rep_u64(cc_redis_reply_at(rep, 1), &more) ||
        cc_redis_reply_type(arr) != CC_REDIS_REPLY_ARRAY)
        return CC_EBACKEND;
    size_t n = cc_redis_reply_count(arr);
    o->res.more = more != 0;
    if (n == 0)
        return 0;
    size_t bytes = n * sizeof(cc_store_msg);
    for (size_t i = 0; i < n; i++) {
        size_t l;
        if (!cc_redis_reply_str(cc_redis_reply_at(arr, i), &l))
            return CC_EBACKEND;
        bytes += l + 1;
    }
    cc_store_msg *m = res_alloc(st, o, bytes);
    if (!m)
        return CC_ENOMEM;
    char *bodies = (char *)(m + n);
    for (size_t i = 0; i < n; i++) {
        size_t l, boff;
        const char *s = cc_redis_reply_str(cc_redis_reply_at(arr, i), &l);
        memset(&m[i], 0, sizeof m[i]);
        if (parse_msg(s, l, &m[i], &boff))
            return CC_EBACKEND;
        m[i].seq = first + i;
        m[i].body = bodies;
        m[i].body_len = l - boff;
        memcpy(bodies, s + boff, l - boff);
        bodies[l - boff] = '\0';
        bodies += l - boff + 1;
    }
    o->res.msgs = m;
    o->res.nmsgs = n;
    return 0;
}

static int
res_list(rs *st, op *o, const cc_redis_reply *rep)
{
    if (cc_redis_reply_type(rep) != CC_REDIS_REPLY_ARRAY ||
        cc_redis_reply_count(rep) % (NSESS_FIELDS + 1))
        return CC_EBACKEND;
    size_t n = cc_redis_reply_count(rep) / (NSESS_FIELDS + 1);
    if (n == 0)
        return 0;
    cc_store_session *s = res_alloc(st, o, n * sizeof *s);
    if (!s)
        return CC_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t at = i * (NSESS_FIELDS + 1);
        memset(&s[i], 0, sizeof s[i]);
        set_id(s[i].tenant, o->s[0]);
        rep_copy(cc_redis_reply_at(rep, at), s[i].id, sizeof s[i].id);
        if (parse_row(rep, at + 1, &s[i]))
            return CC_EBACKEND;
    }
    o->res.sess = s;
    o->res.nsess = n;
    return 0;
}

/* The reply of a (non-load) op into its result. */
static int
result(rs *st, op *o, const cc_redis_reply *rep)
{
    size_t n;
    const char *s;
    uint64_t a, b;
    switch (o->kind) {
    case OP_MSG_APPEND: {
        s = cc_redis_reply_str(rep, &n);
        if (!is_str(rep))
            return CC_EBACKEND;
        if (n == 1 && s[0] == 'E')
            return CC_ENOENT;
        const char *sp1 = memchr(s, ' ', n);
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - s))
                              : NULL;
        if (!sp2 || parse_u64(s, (size_t)(sp1 - s), &a) ||
            parse_u64(sp1 + 1, (size_t)(sp2 - sp1 - 1), &b) ||
            (size_t)(s + n - sp2) != 2 || (sp2[1] != '0' && sp2[1] != '1'))
            return CC_EBACKEND;
        o->res.seq = a;
        o->res.ts = b;
        o->res.dup = sp2[1] == '1';
        return 0;
    }
    case OP_MSGS_READ:
        return res_msgs(st, o, rep);
    case OP_SESSION_GET: {
        if (cc_redis_reply_type(rep) != CC_REDIS_REPLY_ARRAY ||
            cc_redis_reply_count(rep) != NSESS_FIELDS)
            return CC_EBACKEND;
        if (cc_redis_reply_type(cc_redis_reply_at(rep, 2)) ==
            CC_REDIS_REPLY_NIL)
            return CC_ENOENT;
        cc_store_session *se = res_alloc(st, o, sizeof *se);
        if (!se)
            return CC_ENOMEM;
        memset(se, 0, sizeof *se);
        set_id(se->tenant, o->s[0]);
        set_id(se->id, o->s[1]);
        if (parse_row(rep, 0, se))
            return CC_EBACKEND;
        o->res.sess = se;
        o->res.nsess = 1;
        return 0;
    }
    case OP_SESSIONS_LIST:
        return res_list(st, o, rep);
    case OP_CURSOR_GET: {
        if (cc_redis_reply_type(rep) == CC_REDIS_REPLY_NIL)
            return 0;
        s = cc_redis_reply_str(rep, &n);
        const char *sp = is_str(rep) ? memchr(s, ' ', n) : NULL;
        if (!sp || parse_u64(s, (size_t)(sp - s), &a) ||
            parse_u64(sp + 1, n - (size_t)(sp + 1 - s), &b))
            return CC_EBACKEND;
        o->res.acked = a;
        o->res.read = b;
        return 0;
    }
    case OP_META_PUT:
    case OP_AGENT_DEL:
        return cc_redis_reply_type(rep) == CC_REDIS_REPLY_INT ? 0
                                                              : CC_EBACKEND;
    case OP_BARRIER:
        return cc_redis_reply_type(rep) == CC_REDIS_REPLY_STATUS
                   ? 0
                   : CC_EBACKEND;
    default:   /* the write scripts answer 1 */
        return cc_redis_reply_type(rep) == CC_REDIS_REPLY_INT &&
                       cc_redis_reply_int(rep) == 1
                   ? 0
                   : CC_EBACKEND;
    }
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */

typedef struct kv {
    const char *k, *v;      /* NUL-terminated (hiredis terminates) */
    size_t kl;
} kv;

static int
kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    size_t n = x->kl < y->kl ? x->kl : y->kl;
    int c = memcmp(x->k, y->k, n);
    if (c)
        return c;
    return x->kl < y->kl ? -1 : x->kl > y->kl;
}

/* The pairs of a flat HGETALL reply, sorted by key; *out NULL when
 * empty. The caller frees n * sizeof(kv). */
static int
pairs(rs *st, const cc_redis_reply *h, kv **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (cc_redis_reply_type(h) != CC_REDIS_REPLY_ARRAY ||
        cc_redis_reply_count(h) % 2)
        return CC_EBACKEND;
    size_t n = cc_redis_reply_count(h) / 2;
    if (!n)
        return 0;
    kv *p = cc_ctx_alloc(st->ctx, n * sizeof *p);
    if (!p)
        return CC_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        p[i].k = cc_redis_reply_str(cc_redis_reply_at(h, 2 * i), &p[i].kl);
        p[i].v = cc_redis_reply_str(cc_redis_reply_at(h, 2 * i + 1), NULL);
        if (!p[i].k || !p[i].v) {
            cc_ctx_free(st->ctx, p, n * sizeof *p);
            return CC_EBACKEND;
        }
    }
    qsort(p, n, sizeof *p, kv_cmp);
    *out = p;
    *nout = n;
    return 0;
}

/* The first phase at or after `ph` that the loader wants. */
static void
load_advance(load *ld, int ph)
{
    const cc_store_loader *l = &ld->l;
    for (;; ph++) {
        ld->ti = 0;
        ld->state = CC_STORE_NEW;
        ld->off = 0;
        switch (ph) {
        case P_META:
            if (l->meta) {
                ld->phase = ph;
                return;
            }
            break;
        case P_TENANTS:
            if (l->tenant || l->agent || l->session || l->cursor) {
                ld->phase = ph;
                return;
            }
            break;
        case P_AGENTS:
            if (l->agent && ld->ntids) {
                ld->phase = ph;
                return;
            }
            break;
        case P_SESS:
            if (l->session && ld->ntids) {
                ld->phase = ph;
                return;
            }
            break;
        case P_CURS:
            if (l->cursor && ld->ntids) {
                ld->phase = ph;
                return;
            }
            break;
        default:
            ld->phase = P_END;
            return;
        }
    }
}

static int
build_load(rs *st, op *o, cmdv *c)
{
    load *ld = o->ld;
    switch (ld->phase) {
    case P_META:
        cv_arg(c, "HGETALL");
        cv_key(c, st, "meta", NULL, NULL);
        return 0;
    case P_TENANTS:
        cv_script(c, st, SCR_LTEN);
        return 0;
    case P_AGENTS:
        cv_arg(c, "HGETALL");
        cv_key(c, st, "agents:", ld->tids[ld->ti], NULL);
        return 0;
    case P_SESS:
    case P_CURS:
        cv_script(c, st, SCR_LPAGE);
        cv_arg(c, ld->tids[ld->ti]);
        cv_u64(c, (uint64_t)ld->state);
        cv_u64(c, ld->off);
        cv_u64(c, LOAD_PAGE);
        cv_arg(c, ld->phase == P_SESS ? "1" : "2");
        return 0;
    default:
        /* a load that reads nothing still takes its turn */
        cv_arg(c, "PING");
        return 0;
    }
}

static int
load_tenants(rs *st, load *ld, const cc_redis_reply *rep)
{
    const cc_redis_reply *h = cc_redis_reply_at(rep, 0);
    const cc_redis_reply *set = cc_redis_reply_at(rep, 1);
    if (cc_redis_reply_type(rep) != CC_REDIS_REPLY_ARRAY ||
        cc_redis_reply_type(set) != CC_REDIS_REPLY_ARRAY)
        return CC_EBACKEND;
    kv *rows;
    size_t nrows;
    int rc = pairs(st, h, &rows, &nrows);
    if (rc)
        return rc;
    /* every id: the rows' and the set's; sorted, then unique */
    size_t nset = cc_redis_reply_count(set), n = nrows + nset;
    kv *all = n ? cc_ctx_alloc(st->ctx, n * sizeof *all) : NULL;
    if (n && !all) {
        rc = CC_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nrows; i++)
        all[i] = rows[i];
    for (size_t i = 0; i < nset; i++) {
        kv *e = &all[nrows + i];
        e->k = cc_redis_reply_str(cc_redis_reply_at(set, i), &e->kl);
        e->v = NULL;
        if (!e->k) {
            rc = CC_EBACKEND;
            goto out;
        }
    }
    if (n)
        qsort(all, n, sizeof *all, kv_cmp);
    size_t nchosen = 0;
    char (*tids)[ID_CAP] =
        n ? cc_ctx_alloc(st->ctx, n * sizeof *tids) : NULL;
    if (n && !tids) {
        rc = CC_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n;) {
        /* the group of equal ids; the row's json when there is one */
        size_t j = i;
        const char *json = NULL;
        while (j < n && kv_cmp(&all[i], &all[j]) == 0) {
            if (all[j].v)
                json = all[j].v;
            j++;
        }
        const char *id = all[i].k;
        i = j;
        if (all[j - 1].kl >= ID_CAP)
            continue;   /* not an id of ours */
        if (ld->l.want_tenant && !ld->l.want_tenant(ld->l.data, id))
            continue;
        if (json && ld->l.tenant)
            ld->l.tenant(ld->l.data, id, json);
        set_id(tids[nchosen++], id);
    }
    ld->tids = tids;
    ld->tids_cap = n;
    ld->ntids = nchosen;
out:
    if (all)
        cc_ctx_free(st->ctx, all, n * sizeof *all);
    if (rows)
        cc_ctx_free(st->ctx, rows, nrows * sizeof *rows);
    return rc;
}

/* One load step's reply: call the loader, move on. 0 or an error. */
static int
load_step(rs *st, load *ld, const cc_redis_reply *rep)
{
    const cc_store_loader *l = &ld->l;
    kv *p;
    size_t n;
    int rc;
    switch (ld->phase) {
    case P_META:
        if ((rc = pairs(st, rep, &p, &n)) != 0)
            return rc;
        for (size_t i = 0; i < n; i++)
            l->meta(l->data, p[i].k, p[i].v);
        if (p)
            cc_ctx_free(st->ctx, p, n * sizeof *p);
        load_advance(ld, P_TENANTS);
        return 0;
    case P_TENANTS:
        if ((rc = load_tenants(st, ld, rep)) != 0)
            return rc;
        load_advance(ld, P_AGENTS);
        return 0;
    case P_NOOP:
        ld->phase = P_END;
        return 0;
    case P_AGENTS:
        if ((rc = pairs(st, rep, &p, &n)) != 0)
            return rc;
        for (size_t i = 0; i < n; i++)
            l->agent(l->data, ld->tids[ld->ti], p[i].k, p[i].v);
        if (p)
            cc_ctx_free(st->ctx, p, n * sizeof *p);
        if (++ld->ti == ld->ntids)
            load_advance(ld, P_SESS);
        return 0;
    default:
        break;
    }
    /* P_SESS / P_CURS: {n ids, items...} */
    uint64_t nids;
    size_t cnt = cc_redis_reply_count(rep);
    if (cc_redis_reply_type(rep) != CC_REDIS_REPLY_ARRAY || cnt < 1 ||
        rep_u64(cc_redis_reply_at(rep, 0), &nids))
        return CC_EBACKEND;
    const char *t = ld->tids[ld->ti];
    if (ld->phase == P_SESS) {
        if (cnt - 1 != nids * (NSESS_FIELDS + 1))
            return CC_EBACKEND;
        cc_store_session s;
        for (size_t i = 0; i < nids; i++) {
            size_t at = 1 + i * (NSESS_FIELDS + 1);
            memset(&s, 0, sizeof s);
            set_id(s.tenant, t);
            rep_copy(cc_redis_reply_at(rep, at), s.id, sizeof s.id);
            if (parse_row(rep, at + 1, &s))
                return CC_EBACKEND;
            l->session(l->data, &s);
        }
    } else {
        if ((cnt - 1) % 3)
            return CC_EBACKEND;
        for (size_t i = 1; i < cnt; i += 3) {
            const char *sid = cc_redis_reply_str(cc_redis_reply_at(rep, i),
                                                 NULL);
            const char *user =
                cc_redis_reply_str(cc_redis_reply_at(rep, i + 1), NULL);
            size_t vl;
            const char *v =
                cc_redis_reply_str(cc_redis_reply_at(rep, i + 2), &vl);
            const char *sp = v ? memchr(v, ' ', vl) : NULL;
            uint64_t a, b;
            if (!sid || !user || !sp ||
                parse_u64(v, (size_t)(sp - v), &a) ||
                parse_u64(sp + 1, vl - (size_t)(sp + 1 - v), &b))
                return CC_EBACKEND;
            l->cursor(l->data, t, sid, user, a, b);
        }
    }
    if (nids == LOAD_PAGE) {
        ld->off += LOAD_PAGE;
    } else if (ld->state < CC_STORE_OFFLINE) {
        ld->state++;
        ld->off = 0;
    } else if (++ld->ti < ld->ntids) {
        ld->state = CC_STORE_NEW;
        ld->off = 0;
    } else {
        load_advance(ld, ld->phase + 1);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */

/* Error replies that mean "not run, try again": the dataset is loading,
 * a script is busy, the script cache was flushed, a failover. */
static int
transient_error(const char *s, size_t n)
{
    static const char *const words[] = {"LOADING", "BUSY", "NOSCRIPT",
                                        "MASTERDOWN", "TRYAGAIN",
                                        "READONLY"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t k = strlen(words[i]);
        if (n >= k && memcmp(s, words[i], k) == 0 && (n == k || s[k] == ' '))
            return 1;
    }
    return 0;
}

static void
count_trip(rs *st, uint64_t t0, int ok)
{
    double secs = now_secs_since(t0);
    uv_mutex_lock(&st->mu);
    if (ok) {
        st->stats.commits++;
        st->stats.commit_seconds_sum += secs;
        st->stats.hist[hist_bucket(secs)]++;
    } else {
        st->stats.failures++;
    }
    uv_mutex_unlock(&st->mu);
}

static void
on_reply(cc_redis *r, int status, const cc_redis_reply *rep, void *data)
{
    ticket *t = data;
    rs *st = t->st;
    op *o = t->o;
    uint64_t t0 = t->t0;
    (void)r;
    if (!st) {
        /* the store gave up on it (close) */
        cc_ctx_free(t->ctx, t, sizeof *t);
        return;
    }
    t->prev->next = t->next;
    t->next->prev = t->prev;
    st->nout--;
    st->outbytes -= t->bytes;
    if (t->script >= 0)
        st->script_out[t->script]--;
    cc_ctx_free(st->ctx, t, sizeof *t);

    /* 1 retry, 0 result (rc final) */
    int retry = 0, rc = 0;
    if (status == CC_ECONNRESET || status == CC_ETIMEDOUT) {
        retry = 1;
    } else if (status) {
        rc = status;   /* CC_ECANCELED: the adapter is closing */
    } else if (cc_redis_reply_type(rep) == CC_REDIS_REPLY_ERROR) {
        size_t n;
        const char *s = cc_redis_reply_str(rep, &n);
        if (transient_error(s, n))
            retry = 1;
        else
            rc = CC_EBACKEND;
    }
    count_trip(st, t0, !retry && !rc);

    if (retry || st->recovering) {
        /* not run, or run out of the order it may be kept in: again */
        st->recovering = 1;
        o->state = OS_QUEUED;
    } else {
        st->backoff_ms = 0;
        if (o->kind == OP_LOAD) {
            /* what came before it completes first */
            reap(st);
            if (!rc)
                rc = load_step(st, o->ld, rep);
            if (!rc && o->ld->phase != P_END) {
                o->state = OS_QUEUED;   /* the next step */
            } else {
                o->res.rc = rc;
                o->state = OS_DONE;
            }
        } else {
            if (!rc)
                rc = result(st, o, rep);
            if (rc) {
                free_results(st, o);
                o->res.seq = o->res.ts = 0;
                o->res.dup = o->res.more = 0;
                o->res.acked = o->res.read = 0;
            }
            o->res.rc = rc;
            o->state = OS_DONE;
        }
    }
    if (st->recovering && st->nout == 0) {
        /* everything answered: send again from the first op not done */
        st->recovering = 0;
        op *q = st->head;
        while (q && q->state != OS_QUEUED)
            q = q->next;
        st->next_send = q;
        arm_retry(st);
    }
    reap(st);
    pump(st);
}

/* ------------------------------------------------------------------ */
/* Queueing (loop thread)                                              */

/* Allocate an op with `extra` bytes at the start of buf and the n
 * strings (NULLs allowed) copied after them. */
static int
op_new(rs *st, op **out, int kind, size_t extra, int n,
       const char *const *strs)
{
    if (st->closing)
        return CC_ESTATE;
    if (st->npending >= PENDING_MAX)
        return CC_EQUEUEFULL;
    size_t lens[4] = {0};
    size_t size = sizeof(op) + extra;
    for (int i = 0; i < n; i++)
        if (strs[i]) {
            lens[i] = strlen(strs[i]);
            if (lens[i] > SIZE_MAX / 2 - size)
                return CC_E2BIG;
            size += lens[i] + 1;
        }
    op *o = cc_ctx_alloc(st->ctx, size);
    if (!o)
        return CC_ENOMEM;
    memset(o, 0, sizeof *o);
    o->size = size;
    o->kind = kind;
    o->state = OS_QUEUED;
    char *p = (char *)o->buf + extra;
    for (int i = 0; i < n; i++) {
        if (!strs[i])
            continue;
        memcpy(p, strs[i], lens[i] + 1);
        o->s[i] = p;
        o->n[i] = lens[i];
        p += lens[i] + 1;
    }
    *out = o;
    return 0;
}

static void
op_queue(rs *st, op *o, cc_store_cb cb, void *data)
{
    o->cb = cb;
    o->data = data;
    if (st->tail)
        st->tail->next = o;
    else
        st->head = o;
    st->tail = o;
    if (!st->next_send)
        st->next_send = o;
    st->npending++;
    uv_mutex_lock(&st->mu);
    st->stats.pending++;
    uv_mutex_unlock(&st->mu);
    pump(st);
}

static int
queue_strs(rs *st, int kind, int n, const char *const *strs, cc_store_cb cb,
           void *data)
{
    op *o;
    int rc = op_new(st, &o, kind, 0, n, strs);
    if (rc)
        return rc;
    op_queue(st, o, cb, data);
    return 0;
}

static int
rs_load_async(void *impl, const cc_store_loader *l, cc_store_cb cb,
              void *data)
{
    rs *st = impl;
    op *o;
    int rc = op_new(st, &o, OP_LOAD, sizeof(load), 0, NULL);
    if (rc)
        return rc;
    o->ld = (load *)(void *)o->buf;
    memset(o->ld, 0, sizeof *o->ld);
    o->ld->l = *l;
    load_advance(o->ld, P_META);
    if (o->ld->phase == P_END)
        o->ld->phase = P_NOOP;
    op_queue(st, o, cb, data);
    return 0;
}

static int
rs_meta_put(void *impl, const char *key, const char *value, cc_store_cb cb,
            void *data)
{
    const char *s[2] = {key, value};
    return queue_strs(impl, OP_META_PUT, 2, s, cb, data);
}

static int
rs_tenant_put(void *impl, const char *id, const char *json, cc_store_cb cb,
              void *data)
{
    const char *s[2] = {id, json};
    return queue_strs(impl, OP_TENANT_PUT, 2, s, cb, data);
}

static int
rs_tenant_del(void *impl, const char *id, cc_store_cb cb, void *data)
{
    const char *s[1] = {id};
    return queue_strs(impl, OP_TENANT_DEL, 1, s, cb, data);
}

static int
rs_agent_put(void *impl, const char *tenant, const char *id,
             const char *json, cc_store_cb cb, void *data)
{
    const char *s[3] = {tenant, id, json};
    return queue_strs(impl, OP_AGENT_PUT, 3, s, cb, data);
}

static int
rs_agent_del(void *impl, const char *tenant, const char *id, cc_store_cb cb,
             void *data)
{
    const char *s[2] = {tenant, id};
    return queue_strs(impl, OP_AGENT_DEL, 2, s, cb, data);
}

static int
rs_session_put(void *impl, const cc_store_session *r, cc_store_cb cb,
               void *data)
{
    rs *st = impl;
    op *o;
    int rc = op_new(st, &o, OP_SESSION_PUT, sizeof *r, 0, NULL);
    if (rc)
        return rc;
    cc_store_session *copy = (cc_store_session *)(void *)o->buf;
    memcpy(copy, r, sizeof *r);
    o->rec = copy;
    op_queue(st, o, cb, data);
    return 0;
}

static int
rs_msg_append(void *impl, const char *tenant, const char *session,
              const char *cid, const char *from, int kind, const char *body,
              size_t body_len, uint64_t ts, cc_store_cb cb, void *data)
{
    rs *st = impl;
    /* they must fit cc_store_msg's fields when read back */
    if (strlen(from) > FROM_MAX || (cid && strlen(cid) > CID_MAX))
        return CC_EINVAL;
    if (body_len > SIZE_MAX / 2)
        return CC_E2BIG;
    const char *s[4] = {tenant, session, cid, from};
    op *o;
    /* the body first in buf (not NUL-terminated: sent by length) */
    int rc = op_new(st, &o, OP_MSG_APPEND, body_len, 4, s);
    if (rc)
        return rc;
    memcpy(o->buf, body, body_len);
    o->u[0] = ts;
    o->u[1] = body_len;
    o->i[0] = kind;
    snprintf(o->tok, sizeof o->tok, "%s.%llx", st->inst,
             (unsigned long long)++st->tokn);
    op_queue(st, o, cb, data);
    return 0;
}

static int
rs_cursor_put(void *impl, const char *tenant, const char *session,
              const char *user, uint64_t acked, uint64_t read,
              cc_store_cb cb, void *data)
{
    rs *st = impl;
    const char *s[3] = {tenant, session, user};
    op *o;
    int rc = op_new(st, &o, OP_CURSOR_PUT, 0, 3, s);
    if (rc)
        return rc;
    o->u[0] = acked;
    o->u[1] = read;
    op_queue(st, o, cb, data);
    return 0;
}

static int
rs_msgs_read(void *impl, const char *tenant, const char *session,
             uint64_t after, int limit, int tail, cc_store_cb cb, void *data)
{
    rs *st = impl;
    const char *s[2] = {tenant, session};
    op *o;
    int rc = op_new(st, &o, OP_MSGS_READ, 0, 2, s);
    if (rc)
        return rc;
    o->u[0] = after;
    o->i[0] = limit;
    o->i[1] = tail != 0;
    op_queue(st, o, cb, data);
    return 0;
}

static int
rs_session_get(void *impl, const char *tenant, const char *id,
               cc_store_cb cb, void *data)
{
    const char *s[2] = {tenant, id};
    return queue_strs(impl, OP_SESSION_GET, 2, s, cb, data);
}

static int
rs_sessions_list(void *impl, const char *tenant, int state,
                 const char *visitor, int limit, cc_store_cb cb, void *data)
{
    rs *st = impl;
    const char *s[2] = {tenant, visitor};
    op *o;
    int rc = op_new(st, &o, OP_SESSIONS_LIST, 0, 2, s);
    if (rc)
        return rc;
    o->i[0] = state;
    o->i[1] = limit;
    op_queue(st, o, cb, data);
    return 0;
}

static int
rs_cursor_get(void *impl, const char *tenant, const char *session,
              const char *user, cc_store_cb cb, void *data)
{
    const char *s[3] = {tenant, session, user};
    return queue_strs(impl, OP_CURSOR_GET, 3, s, cb, data);
}

static int
rs_barrier(void *impl, cc_store_cb cb, void *data)
{
    return queue_strs(impl, OP_BARRIER, 0, NULL, cb, data);
}

static void
rs_stats(void *impl, cc_store_stats *out)
{
    rs *st = impl;
    uv_mutex_lock(&st->mu);
    *out = st->stats;
    uv_mutex_unlock(&st->mu);
}

/* Finish what is queued; cancel what is left after CLOSE_GRACE_MS with
 * no progress (a Redis that stays away); then free and tell. */
static void
rs_close(void *impl, void (*done)(void *data), void *data)
{
    rs *st = impl;
    if (st->closing)
        return;
    st->closing = 1;
    st->done = done;
    st->done_data = data;
    uv_timer_stop(&st->idle);
    if (!st->head)
        forget_flush(st);
    if (!st->head) {
        finish(st);   /* done runs from the handles' close callbacks */
        return;
    }
    uv_timer_start(&st->closet, on_close_timeout, CLOSE_GRACE_MS, 0);
}

static const cc_store_ops rs_ops = {
    .size = sizeof(cc_store_ops),
    .load = NULL,
    .load_async = rs_load_async,
    .meta_put = rs_meta_put,
    .tenant_put = rs_tenant_put,
    .tenant_del = rs_tenant_del,
    .agent_put = rs_agent_put,
    .agent_del = rs_agent_del,
    .session_put = rs_session_put,
    .msg_append = rs_msg_append,
    .cursor_put = rs_cursor_put,
    .msgs_read = rs_msgs_read,
    .session_get = rs_session_get,
    .sessions_list = rs_sessions_list,
    .cursor_get = rs_cursor_get,
    .barrier = rs_barrier,
    .stats = rs_stats,
    .close = rs_close,
};

/* ------------------------------------------------------------------ */
/* Opening                                                             */

static void
hex(char *dst, const unsigned char *src, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 15];
    }
    dst[2 * n] = '\0';
}

int
cc_store_redis_open(cc_store **out, cc_ctx *ctx, cc_redis *r, const char *ns)
{
    if (!out || !ctx || !r)
        return CC_EINVAL;
    if (!ns || !*ns)
        ns = NS_DEFAULT;
    size_t nl = strlen(ns);
    if (nl > NS_MAX)
        return CC_EINVAL;
    for (size_t i = 0; i < nl; i++)
        if (!id_char((unsigned char)ns[i]))
            return CC_EINVAL;
    rs *st = cc_ctx_alloc(ctx, sizeof *st);
    if (!st)
        return CC_ENOMEM;
    memset(st, 0, sizeof *st);
    st->ctx = ctx;
    st->r = r;
    memcpy(st->ns, ns, nl + 1);
    st->nslen = nl;
    st->out.next = st->out.prev = &st->out;
    for (int i = 0; i < SCR__N; i++) {
        unsigned char d[20];
        if (mbedtls_sha1_ret((const unsigned char *)scripts[i],
                             strlen(scripts[i]), d) != 0) {
            cc_ctx_free(ctx, st, sizeof *st);
            return CC_EIO;
        }
        hex(st->sha[i], d, sizeof d);
    }
    /* tokens must not collide across processes and nodes that share the
     * Redis: 128 random bits per store */
    unsigned char rnd[16];
    int rc = uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL);
    if (rc) {
        cc_ctx_free(ctx, st, sizeof *st);
        return CC_EIO;
    }
    hex(st->inst, rnd, sizeof rnd);
    if (uv_mutex_init(&st->mu) != 0) {
        cc_ctx_free(ctx, st, sizeof *st);
        return CC_ENOMEM;
    }
    rc = cc_store_new(out, ctx, &rs_ops, st);
    if (rc) {
        uv_mutex_destroy(&st->mu);
        cc_ctx_free(ctx, st, sizeof *st);
        return rc;
    }
    /* cannot fail for timers; after cc_store_new so that nothing needs
     * an asynchronous close on its failure */
    uv_loop_t *loop = cc_ctx_loop(ctx);
    uv_timer_init(loop, &st->retry);
    uv_timer_init(loop, &st->kick);
    uv_timer_init(loop, &st->closet);
    uv_timer_init(loop, &st->idle);
    /* the idle flush is housekeeping: it keeps no loop alive */
    uv_unref((uv_handle_t *)&st->idle);
    st->retry.data = st->kick.data = st->closet.data = st->idle.data = st;
    return 0;
}
