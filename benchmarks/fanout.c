/*
 * The load generator in C for the fan-out and latency workloads
 * (benchmarks/cgen.py builds and drives it).
 *
 * It speaks no protocol of its own: benchmarks/cgen.py connects every member,
 * says hello and joins (anonchat), registers and joins (IRC) or just connects
 * (the raw relay), then starts this program with the connected sockets as
 * inherited file descriptors and everything protocol-specific as bytes:
 *
 *   fanout [options] CONN...
 *     --count HEX      the bytes every delivered message carries once
 *                      (anonchat/relay: the msgpack entry "t": "msg"; IRC: " PRIVMSG ")
 *     --window N       messages in flight per sender (default 4)
 *     --limit N        each sender sends N messages in all, then the program
 *                      exits once every member has received every message of
 *                      the others (or after --timeout seconds, status 1)
 *     --timeout S      with --limit (default 60)
 *     --quickack       re-arm TCP_QUICKACK after every read (IRC: ngircd sets
 *                      no TCP_NODELAY, see benchmarks/ircload.py)
 *     --ping anonchat|irc   answer the server's pings (see answer_ping)
 *     --tls PIN        (built with -DFANOUT_TLS, linked with OpenSSL) every
 *                      connection is TLS 1.3: this program makes the handshake
 *                      over the inherited TCP socket, checks that the server's
 *                      key is PIN (hex: SHA-256 of its SubjectPublicKeyInfo),
 *                      writes the connection's SETUP bytes and reads until the
 *                      --joined bytes (or an error) arrive, one connection
 *                      after another, in the order given, before the loop
 *     --joined HEX     with --tls: what ends a connection's setup ("t": "joined")
 *   The latency workload (any of these three makes it; all three are needed):
 *     --rate R         each sender sends R messages a second, paced (see below)
 *                      instead of keeping a window; no watcher is needed
 *     --stamp HEX      the bytes just before the send time in a delivered
 *                      message (anonchat/relay: the msgpack key "text" and the
 *                      text's str header; IRC: " PRIVMSG #room :")
 *     --samples FILE   where the final report writes the samples: one int64
 *                      per sample (nanoseconds, this machine's byte order)
 *   CONN is r:FD (a receiver), w:FD (the watcher: a receiver that also frees
 *   the senders' windows) or s:FD:PAYLOAD:TOKEN (a sender: PAYLOAD, in hex, is
 *   one message as written to the server, sent again and again; TOKEN, in hex,
 *   the bytes that name the sender in each of its messages as others receive
 *   them, e.g. "nick": "s3" or ":s3!"); with --rate a sender is
 *   s:FD:PAYLOAD:TOKEN:AT, PAYLOAD a template whose bytes AT .. AT+19 (AT in
 *   decimal) are 20 ASCII digits, overwritten in each message sent with its
 *   send time; with --tls each ends in :SETUP (hex: the hello and join
 *   frames).  "fanout --features" prints "tls" if built so.
 *
 * The workload is benchmarks/load.py's and ircload.py's "fanout": each sender
 * keeps --window messages in flight; a message leaves the window when the
 * watcher (another member) has received it.  A delivery is a message received
 * by a member other than its sender: a sender's reads count the messages that
 * do not carry its own TOKEN (anonchatd sends senders their own messages back;
 * IRC and the relay do not).  Messages are counted by finding --count in the
 * byte stream (memmem; a token split between two reads is counted once).
 *
 * The latency workload (--rate) is load.py's and ircload.py's "latency":
 * sender k of n sends on a fixed schedule, one message every 1/R seconds
 * from k/(n R) seconds after 'g' (the senders' phases spread evenly over the
 * interval).  Its schedule is kept by a timerfd at the earliest due time: a
 * message sent late does not move the later ones (those already due go at
 * once; none goes before its time).  Each message carries the
 * CLOCK_MONOTONIC nanoseconds at which it was written into the sender's
 * buffer, as 20 decimal digits in place of the template's (the frame's
 * length and the text's length stay right).  Every member other than its
 * sender finds the digits after --stamp in what it reads and, while
 * measuring, keeps (the time of that read - the send time) as a sample: the
 * receivers, and the senders for the others' messages.  A sender's own
 * message (anonchatd sends it back) is told apart by its TOKEN before the
 * stamp: in every server's messages the sender's name comes before the text.
 *
 * Once every connection is set up it prints {"ready": N}.  Then commands on
 * stdin, one byte each: 'g' lets the senders go, 's' prints a
 * snapshot (one JSON line on stdout: deliveries, messages sent, connections
 * lost, CLOCK_MONOTONIC seconds, this process's CPU seconds, samples kept),
 * 'm' starts keeping latency samples, 'e' stops keeping them, 'q' or end of
 * file prints the final report (the snapshot plus per-connection counts; with
 * --rate the samples' count, least and greatest, the stamps that were not 20
 * digits, and each connection's stamped messages from others, counted
 * whether measuring or not) and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#ifdef FANOUT_TLS
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

#define READ_SIZE (256 * 1024)
#define TAIL 64        /* bytes kept between reads: longer than any token */
#define MAX_TOKEN (TAIL + 1)
#define REPEAT_BYTES (64 * 1024)
#define STAMP_DIGITS 20 /* a send time: CLOCK_MONOTONIC nanoseconds, zero-padded */

enum role { RECEIVER, WATCHER, SENDER };
enum ping { PING_NONE, PING_ANONCHAT, PING_IRC };

struct conn {
    int fd;
    enum role role;
    int open;
    long long received;      /* deliveries counted on this connection */
    unsigned char tail[TAIL];
    int tail_len;
    /* senders */
    unsigned char *token;    /* how its messages name it */
    int token_len;
    unsigned char *rep;      /* its message, repeated to fill REPEAT_BYTES */
    size_t msg_len, rep_len;
    long long sent;          /* messages committed (credited) */
    long long owed;          /* bytes committed but not yet written */
    long long written;       /* bytes written in all */
    int want_out;
    long long watched;       /* its messages the watcher has seen */
    /* --rate (latency) */
    unsigned char *tmpl;     /* its message, the send time at stamp_at */
    size_t stamp_at;
    unsigned char *out;      /* messages (and pongs) not yet written */
    size_t out_off, out_len, out_cap;
    long long due_ns;        /* when its next message is due */
    int own_seen;            /* its own TOKEN since the last stamp read */
    long long stamped;       /* send times read from others' messages */
    unsigned char *setup;    /* --tls: hello and join, written after the handshake */
    int setup_len;
#ifdef FANOUT_TLS
    SSL *ssl;
    size_t retry_len;        /* an SSL_write to repeat with the same length */
#endif
};

static struct conn *conns;
static int nconns, nsenders;
static int window_size = 4;
static long long limit = -1;
static double timeout_s = 60.0;
static int quickack;
static enum ping ping_mode = PING_NONE;
static unsigned char count_token[MAX_TOKEN];
static int count_len;
static int epfd;
static int going;
static long long lost, pings, unanswered_pings, write_errors;
static unsigned char buf[TAIL + READ_SIZE];
static int tls;
/* --rate (latency) */
static int pacing;
static long long interval_ns;
static unsigned char stamp_token[MAX_TOKEN];
static int stamp_len;
static const char *samples_path;
static int measuring, timer_fd = -1;
static long long *samples;
static size_t nsamples, samples_cap;
static long long sample_min, sample_max, bad_stamps;
#ifdef FANOUT_TLS
static unsigned char tls_pin[32];
static unsigned char joined_token[MAX_TOKEN];
static int joined_len;
static SSL_CTX *tls_ctx;
#endif

static void die(const char *what) {
    fprintf(stderr, "fanout: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void usage(const char *why) {
    fprintf(stderr, "fanout: %s (see the comment at the top of benchmarks/fanout.c)\n", why);
    exit(2);
}

static int unhex(const char *hex, unsigned char **out) {
    size_t n = strlen(hex);
    if (n % 2) usage("odd hex string");
    *out = malloc(n / 2 + 1);
    if (!*out) die("malloc");
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) usage("bad hex string");
        (*out)[i] = (unsigned char)v;
    }
    return (int)(n / 2);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Occurrences of tok in [start, end) that end at or after new (not counted before). */
static long long count_in(const unsigned char *start, const unsigned char *new_data,
                          const unsigned char *end, const unsigned char *tok, int len) {
    const unsigned char *p = new_data - (len - 1);
    if (p < start) p = start;
    long long n = 0;
    while (end - p >= len) {
        const unsigned char *hit = memmem(p, (size_t)(end - p), tok, (size_t)len);
        if (!hit) break;
        n++;
        p = hit + len;
    }
    return n;
}

static void set_events(struct conn *c) {
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void drop(struct conn *c) {
    if (!c->open) return;
    c->open = 0;
    lost++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

/* What a sender has to write next (at *data): with --rate, what its buffer
 * holds; else the rest of the repetitions of its message it owes. */
static size_t pending(struct conn *c, const unsigned char **data) {
    *data = NULL;
    if (c->role != SENDER) return 0;
    if (pacing) {
        if (!c->out) return 0;
        *data = c->out + c->out_off;
        return c->out_len - c->out_off;
    }
    size_t off = (size_t)(c->written % (long long)c->msg_len);
    size_t n = c->rep_len - off;
    if ((long long)n > c->owed) n = (size_t)c->owed;
    *data = c->rep + off;
    return n;
}

static void wrote(struct conn *c, size_t n) {
    c->written += (long long)n;
    if (!pacing) {
        c->owed -= (long long)n;
        return;
    }
    c->out_off += n;
    if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
}

/* Write what a sender has to write, as far as the socket takes. */
static void flush_out(struct conn *c) {
    const unsigned char *data;
    size_t n;
    while (c->open && (n = pending(c, &data)) > 0) {
#ifdef FANOUT_TLS
        if (c->ssl) {
            /* After a WANT_WRITE, OpenSSL wants the same call again. */
            if (c->retry_len) n = c->retry_len;
            if (n > INT_MAX / 2) n = INT_MAX / 2;
            int w = SSL_write(c->ssl, data, (int)n);
            if (w <= 0) {
                int err = SSL_get_error(c->ssl, w);
                if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                    c->retry_len = n;
                    break;
                }
                write_errors++;
                drop(c);
                return;
            }
            c->retry_len = 0;
            wrote(c, (size_t)w);
            continue;
        }
#endif
        ssize_t w = write(c->fd, data, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            write_errors++;
            drop(c);
            return;
        }
        wrote(c, (size_t)w);
    }
    int want = c->open && pending(c, &data) > 0;
    if (c->open && want != c->want_out) {
        c->want_out = want;
        set_events(c);
    }
}

/* --rate: add bytes to a sender's buffer (written by flush_out). */
static void append(struct conn *c, const void *data, size_t n) {
    if (c->out_len + n > c->out_cap) {
#ifdef FANOUT_TLS
        int moving = c->retry_len != 0; /* OpenSSL accepts a moved buffer, with the same bytes */
#else
        int moving = 0;
#endif
        if (c->out_off && !moving) { /* drop what was written before growing */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + n > c->out_cap) {
            size_t cap = c->out_cap ? 2 * c->out_cap : 4096;
            while (cap < c->out_len + n) cap *= 2;
            c->out = realloc(c->out, cap);
            if (!c->out) die("realloc");
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
}

/* 20 digits, zero-padded, for a send time. */
static void put_stamp(unsigned char *at, long long ns) {
    unsigned long long v = (unsigned long long)ns;
    for (int i = STAMP_DIGITS - 1; i >= 0; i--) {
        at[i] = (unsigned char)('0' + v % 10);
        v /= 10;
    }
}

/* --rate: one message of a sender, stamped now, into its buffer. */
static void say_stamped(struct conn *c) {
    size_t at = c->out_len;
    append(c, c->tmpl, c->msg_len);
    put_stamp(c->out + at + c->stamp_at, now_ns());
    c->sent++;
}

/* Commit k more messages of a sender (up to --limit) and write them. */
static void credit(struct conn *c, long long k) {
    if (limit >= 0 && c->sent + k > limit) k = limit - c->sent;
    if (k <= 0) return;
    c->sent += k;
    c->owed += k * (long long)c->msg_len;
    flush_out(c);
}

static void send_bytes(struct conn *c, const void *data, size_t n) {
    /* A pong: tiny and rare.  With --rate a sender's pong joins its buffer,
     * between two messages.  Otherwise a sender's stream must not be cut by
     * it: only answer when the sender has nothing half-written; otherwise
     * count it. */
    if (pacing && c->role == SENDER) {
        append(c, data, n);
        flush_out(c);
        return;
    }
    if (tls || (c->role == SENDER && c->written % (long long)c->msg_len)) {
        unanswered_pings++;
        return;
    }
    if (write(c->fd, data, n) != (ssize_t)n) unanswered_pings++;
}

/*
 * Answer pings found in the new bytes: anonchatd pings a connection silent for
 * ping_interval (30 s by default), ngircd one silent for PingTimeout (600 s in
 * the benchmark's config), so a point of a few seconds sees none.  anonchat:
 * {"t": "ping", "n": N} is answered {"t": "pong", "n": N} when the whole frame
 * is in this read; IRC: "PING :x" with "PONG :x" when the line is.  Others are
 * counted as unanswered (reported, never silent).
 */
static void answer_ping(struct conn *c, const unsigned char *start, const unsigned char *new_data,
                        const unsigned char *end) {
    static const unsigned char anon[] = "\x82\xa1t\xa4ping\xa1n";
    static const unsigned char irc[] = "PING :";
    const unsigned char *tok = ping_mode == PING_ANONCHAT ? anon : irc;
    int len = ping_mode == PING_ANONCHAT ? (int)sizeof anon - 1 : (int)sizeof irc - 1;
    const unsigned char *p = new_data - (len - 1);
    if (p < start) p = start;
    while (end - p >= len) {
        const unsigned char *hit = memmem(p, (size_t)(end - p), tok, (size_t)len);
        if (!hit) break;
        pings++;
        p = hit + len;
        if (ping_mode == PING_ANONCHAT) {
            /* N: a positive fixint, or uint 8/16/32/64 (0xcc..0xcf). */
            if (hit - start < 4 || p >= end) { unanswered_pings++; continue; }
            size_t nlen = *p < 0x80 ? 1 : *p == 0xcc ? 2 : *p == 0xcd ? 3 : *p == 0xce ? 5
                        : *p == 0xcf ? 9 : 0;
            if (!nlen || (size_t)(end - p) < nlen) { unanswered_pings++; continue; }
            static const unsigned char pong[] = "\x82\xa1t\xa4pong\xa1n";
            unsigned char out[4 + sizeof pong - 1 + 9];
            size_t body = sizeof pong - 1 + nlen;
            out[0] = out[1] = 0;
            out[2] = (unsigned char)(body >> 8);
            out[3] = (unsigned char)body;
            memcpy(out + 4, pong, sizeof pong - 1);
            memcpy(out + 4 + sizeof pong - 1, p, nlen);
            send_bytes(c, out, 4 + body);
        } else {
            if (hit != start && hit[-1] != '\n') continue; /* not at a line's start */
            const unsigned char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
            if (!eol || eol - p > 400) { unanswered_pings++; continue; }
            char out[512];
            int n = snprintf(out, sizeof out, "PONG :%.*s\r\n", (int)(eol - p), p);
            send_bytes(c, out, (size_t)n);
        }
    }
}

static void process(struct conn *c, ssize_t n);

#ifdef FANOUT_TLS
/* One read, and what OpenSSL still holds decrypted (the socket no longer shows
 * it as readable); what is left in the socket, epoll reports again. */
static void on_tls_read(struct conn *c) {
    do {
        int n = SSL_read(c->ssl, buf + TAIL, READ_SIZE);
        if (n <= 0) {
            int err = SSL_get_error(c->ssl, n);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
            drop(c);
            return;
        }
        process(c, n);
    } while (SSL_pending(c->ssl) > 0);
    const unsigned char *data;
    if (c->open && pending(c, &data) > 0) flush_out(c); /* a write that wanted a read */
}
#endif

static void on_read(struct conn *c) {
#ifdef FANOUT_TLS
    if (c->ssl) {
        on_tls_read(c);
        return;
    }
#endif
    unsigned char *new_data = buf + TAIL;
    ssize_t n = read(c->fd, new_data, READ_SIZE);
    if (quickack) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        drop(c);
        return;
    }
    process(c, n);
}

/* Whether tok occurs whole in [from, to). */
static int occurs(const unsigned char *from, const unsigned char *to, const unsigned char *tok,
                  int len) {
    return to - from >= len && memmem(from, (size_t)(to - from), tok, (size_t)len) != NULL;
}

static void keep_sample(long long v) {
    if (nsamples == samples_cap) {
        samples_cap = samples_cap ? 2 * samples_cap : 65536;
        samples = realloc(samples, samples_cap * sizeof *samples);
        if (!samples) die("realloc");
    }
    if (!nsamples || v < sample_min) sample_min = v;
    if (!nsamples || v > sample_max) sample_max = v;
    samples[nsamples++] = v;
}

/*
 * --rate: read the send times of the messages whose stamp (--stamp and its 20
 * digits) ends in the new bytes; one that is not whole yet stays in the tail
 * (TAIL is longer than a stamp) and is read with the next read.  A sender
 * skips its own messages: its TOKEN seen since the last stamp marks the next
 * stamp as its own (the name comes before the text in every server's
 * messages; state kept across reads).  now: the time of this read.
 */
static void read_stamps(struct conn *c, const unsigned char *start, const unsigned char *new_data,
                        const unsigned char *end, long long now) {
    int whole = stamp_len + STAMP_DIGITS;
    const unsigned char *p = new_data - (whole - 1), *own = NULL;
    if (p < start) p = start;
    if (c->role == SENDER) { /* its TOKENs not seen before: one new byte at least */
        own = new_data - (c->token_len - 1);
        if (own < start) own = start;
    }
    while (end - p >= whole) {
        const unsigned char *hit = memmem(p, (size_t)(end - p), stamp_token, (size_t)stamp_len);
        if (!hit || end - hit < whole) break;
        if (own) {
            if (occurs(own, hit, c->token, c->token_len)) c->own_seen = 1;
            own = hit + whole;
        }
        const unsigned char *d = hit + stamp_len;
        unsigned long long sent = 0;
        int ok = 1;
        for (int i = 0; i < STAMP_DIGITS; i++) {
            if (d[i] < '0' || d[i] > '9') ok = 0;
            sent = sent * 10 + (unsigned long long)(d[i] - '0');
        }
        if (!ok || sent > (unsigned long long)now) {
            bad_stamps++;
        } else if (!c->own_seen) {
            c->stamped++;
            if (measuring) keep_sample(now - (long long)sent);
        }
        c->own_seen = 0;
        p = hit + whole;
    }
    if (own && occurs(own, end, c->token, c->token_len)) c->own_seen = 1;
}

/* Count what the last read put at buf + TAIL (n bytes). */
static void process(struct conn *c, ssize_t n) {
    long long now = pacing ? now_ns() : 0;
    unsigned char *new_data = buf + TAIL;
    unsigned char *start = new_data - c->tail_len;
    memcpy(start, c->tail, (size_t)c->tail_len);
    unsigned char *end = new_data + n;
    long long msgs = count_in(start, new_data, end, count_token, count_len);
    if (c->role == SENDER) msgs -= count_in(start, new_data, end, c->token, c->token_len);
    c->received += msgs;
    if (c->role == WATCHER && !pacing) {
        for (int i = 0; i < nconns; i++) {
            struct conn *s = &conns[i];
            if (s->role != SENDER) continue;
            long long k = count_in(start, new_data, end, s->token, s->token_len);
            if (k) {
                s->watched += k;
                if (going && s->open) credit(s, k);
            }
        }
    }
    if (pacing) read_stamps(c, start, new_data, end, now);
    if (ping_mode != PING_NONE) answer_ping(c, start, new_data, end);
    int keep = (int)(end - start) < TAIL ? (int)(end - start) : TAIL;
    memcpy(c->tail, end - keep, (size_t)keep);
    c->tail_len = keep;
}

static long long deliveries(void) {
    long long d = 0;
    for (int i = 0; i < nconns; i++) d += conns[i].received;
    return d;
}

static long long sent_total(void) {
    long long s = 0;
    for (int i = 0; i < nconns; i++) s += conns[i].sent;
    return s;
}

/* --samples: every sample kept, as int64 in this machine's byte order. */
static void write_samples(void) {
    FILE *f = fopen(samples_path, "wb");
    if (!f) die(samples_path);
    if (nsamples && fwrite(samples, sizeof *samples, nsamples, f) != nsamples) die(samples_path);
    if (fclose(f)) die(samples_path);
}

static void report(int final) {
    if (final && pacing && samples_path) write_samples();
    printf("{\"deliveries\": %lld, \"sent\": %lld, \"lost\": %lld, \"t\": %.6f, \"cpu\": %.6f, "
           "\"pings\": %lld, \"unanswered_pings\": %lld, \"write_errors\": %lld",
           deliveries(), sent_total(), lost, now_s(), cpu_s(), pings, unanswered_pings,
           write_errors);
    if (pacing) printf(", \"samples\": %zu, \"bad_stamps\": %lld", nsamples, bad_stamps);
    if (final && pacing) {
        printf(", \"sample_min_ns\": %lld, \"sample_max_ns\": %lld, \"stamped\": [", sample_min,
               sample_max);
        for (int i = 0; i < nconns; i++) printf("%s%lld", i ? ", " : "", conns[i].stamped);
        printf("]");
    }
    if (final) {
        printf(", \"received\": [");
        for (int i = 0; i < nconns; i++) printf("%s%lld", i ? ", " : "", conns[i].received);
        printf("], \"sent_by\": [");
        int first = 1;
        for (int i = 0; i < nconns; i++) {
            if (conns[i].role != SENDER) continue;
            printf("%s%lld", first ? "" : ", ", conns[i].sent);
            first = 0;
        }
        printf("]");
    }
    printf("}\n");
    fflush(stdout);
}

/* With --limit: has every member received every message of the others? */
static int complete(void) {
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        long long others = (long long)(nsenders - (c->role == SENDER)) * limit;
        if (c->sent < (c->role == SENDER ? limit : 0)) return 0;
        if (c->received < others) return 0;
        if (pacing && c->stamped < others) return 0; /* its last stamp may be a read behind */
    }
    return 1;
}

/* --rate: the timer at the earliest due time of a sender that has more to send. */
static void arm_timer(void) {
    long long next = LLONG_MAX;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (c->role != SENDER || !c->open || (limit >= 0 && c->sent >= limit)) continue;
        if (c->due_ns < next) next = c->due_ns;
    }
    struct itimerspec it = {0};
    if (next != LLONG_MAX) {
        it.it_value.tv_sec = next / 1000000000LL;
        it.it_value.tv_nsec = next % 1000000000LL;
    }
    if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &it, NULL) < 0) die("timerfd_settime");
}

/* --rate: send what is due (late ones at once), then wait for the next. */
static void on_timer(void) {
    uint64_t expired;
    if (read(timer_fd, &expired, sizeof expired) < 0 && errno != EAGAIN) die("read timerfd");
    long long now = now_ns();
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (c->role != SENDER || !c->open) continue;
        int said = 0;
        while (c->due_ns <= now && (limit < 0 || c->sent < limit)) {
            say_stamped(c);
            c->due_ns += interval_ns;
            said = 1;
        }
        if (said) flush_out(c);
    }
    arm_timer();
}

static void go(void) {
    if (going) return;
    going = 1;
    if (pacing) {
        /* Sender k of n first at k/n of the interval: the phases spread evenly. */
        long long t0 = now_ns();
        int k = 0;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &conns[i];
            c->own_seen = 0; /* what came before (its own join) names no message */
            if (c->role == SENDER) c->due_ns = t0 + interval_ns * k++ / nsenders;
        }
        on_timer();
        return;
    }
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (c->role == SENDER && c->open) credit(c, window_size);
    }
}

#ifdef FANOUT_TLS
static void tls_fail(const char *what) {
    fprintf(stderr, "fanout: %s: ", what);
    ERR_print_errors_fp(stderr);
    fprintf(stderr, "\n");
    exit(2);
}

/* The handshake, the pin, the hello and join, on a blocking socket. */
static void tls_setup(struct conn *c) {
    struct timeval limit = {.tv_sec = 10}; /* a server that never answers fails the setup */
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    c->ssl = SSL_new(tls_ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) tls_fail("SSL_new");
    if (SSL_connect(c->ssl) != 1) tls_fail("TLS handshake");
    X509 *cert = SSL_get_peer_certificate(c->ssl);
    if (!cert) tls_fail("no server certificate");
    unsigned char *spki = NULL, digest[32];
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
    if (len <= 0) tls_fail("the server's key");
    SHA256(spki, (size_t)len, digest);
    OPENSSL_free(spki);
    X509_free(cert);
    if (memcmp(digest, tls_pin, 32)) {
        fprintf(stderr, "fanout: the server's key does not match its pin\n");
        exit(2);
    }
    if (SSL_write(c->ssl, c->setup, c->setup_len) != c->setup_len) tls_fail("setup write");
    /* Read until "t": "joined" (or an error, reported as it came). */
    static const unsigned char error_token[] = "\xa1t\xa5" "error";
    unsigned char *new_data = buf + TAIL;
    for (;;) {
        int n = SSL_read(c->ssl, new_data, READ_SIZE);
        if (n <= 0) tls_fail("the server closed the connection during setup");
        unsigned char *start = new_data - c->tail_len, *end = new_data + n;
        memcpy(start, c->tail, (size_t)c->tail_len);
        if (count_in(start, new_data, end, error_token, (int)sizeof error_token - 1)) {
            fprintf(stderr, "fanout: the server refused a member's setup: ");
            fwrite(new_data, 1, (size_t)n, stderr);
            fprintf(stderr, "\n");
            exit(2);
        }
        int keep = (int)(end - start) < TAIL ? (int)(end - start) : TAIL;
        int found = count_in(start, new_data, end, joined_token, joined_len) > 0;
        memcpy(c->tail, end - keep, (size_t)keep);
        c->tail_len = keep;
        if (found) break;
    }
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}
#endif

static void add_conn(struct conn *c, const char *arg) {
    char *copy = strdup(arg), *save = NULL;
    char *kind = strtok_r(copy, ":", &save), *fd = strtok_r(NULL, ":", &save);
    if (!kind || !fd) usage("a connection is r:FD, w:FD or s:FD:PAYLOAD:TOKEN");
    memset(c, 0, sizeof *c);
    c->fd = atoi(fd);
    c->open = 1;
    if (!strcmp(kind, "r")) {
        c->role = RECEIVER;
    } else if (!strcmp(kind, "w")) {
        c->role = WATCHER;
    } else if (!strcmp(kind, "s")) {
        char *payload = strtok_r(NULL, ":", &save), *token = strtok_r(NULL, ":", &save);
        if (!payload || !token) usage("a sender is s:FD:PAYLOAD:TOKEN");
        unsigned char *msg;
        c->role = SENDER;
        c->msg_len = (size_t)unhex(payload, &msg);
        c->token_len = unhex(token, &c->token);
        if (!c->msg_len || !c->token_len || c->token_len > MAX_TOKEN) usage("bad sender");
        nsenders++;
        if (pacing) { /* its template, stamped anew for each message */
            char *at = strtok_r(NULL, ":", &save), *rest;
            if (!at) usage("with --rate, a sender is s:FD:PAYLOAD:TOKEN:AT");
            long long pos = strtoll(at, &rest, 10);
            if (*rest || pos < 0 || (size_t)pos + STAMP_DIGITS > c->msg_len)
                usage("a sender's AT is not within its PAYLOAD");
            c->tmpl = msg;
            c->stamp_at = (size_t)pos;
        } else { /* its message, repeated to fill REPEAT_BYTES */
            size_t times = REPEAT_BYTES / c->msg_len + 1;
            c->rep_len = times * c->msg_len;
            c->rep = malloc(c->rep_len);
            if (!c->rep) die("malloc");
            for (size_t i = 0; i < times; i++) memcpy(c->rep + i * c->msg_len, msg, c->msg_len);
            free(msg);
        }
    } else {
        usage("a connection is r:FD, w:FD or s:FD:PAYLOAD:TOKEN");
    }
    if (tls) {
        char *setup = strtok_r(NULL, ":", &save);
        if (!setup) usage("with --tls, every connection ends in :SETUP");
        c->setup_len = unhex(setup, &c->setup);
    }
    free(copy);
#ifdef FANOUT_TLS
    if (tls) {
        int flags = fcntl(c->fd, F_GETFL); /* the setup blocks (Python's sockets may not) */
        if (flags < 0 || fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK) < 0) die("fcntl");
        tls_setup(c);
    }
#endif
    int flags = fcntl(c->fd, F_GETFL);
    if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl (not an fd?)");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (quickack) setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

int main(int argc, char **argv) {
    int i = 1;
    if (argc == 2 && !strcmp(argv[1], "--features")) {
#ifdef FANOUT_TLS
        puts("tls");
#else
        puts("");
#endif
        return 0;
    }
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "--quickack")) {
            quickack = 1;
            continue;
        }
        if (i + 1 >= argc) usage("an option is missing its value");
        const char *val = argv[++i];
        if (!strcmp(opt, "--count")) {
            unsigned char *tok;
            count_len = unhex(val, &tok);
            if (!count_len || count_len > MAX_TOKEN) usage("bad --count");
            memcpy(count_token, tok, (size_t)count_len);
            free(tok);
        } else if (!strcmp(opt, "--window")) {
            window_size = atoi(val);
        } else if (!strcmp(opt, "--limit")) {
            limit = atoll(val);
        } else if (!strcmp(opt, "--timeout")) {
            timeout_s = atof(val);
        } else if (!strcmp(opt, "--tls")) {
#ifdef FANOUT_TLS
            unsigned char *pin;
            if (unhex(val, &pin) != 32) usage("--tls takes the 32 bytes of a pin, in hex");
            memcpy(tls_pin, pin, 32);
            free(pin);
            tls = 1;
#else
            usage("--tls: this build has no TLS (built without OpenSSL)");
#endif
        } else if (!strcmp(opt, "--joined")) {
#ifdef FANOUT_TLS
            unsigned char *tok;
            joined_len = unhex(val, &tok);
            if (!joined_len || joined_len > MAX_TOKEN) usage("bad --joined");
            memcpy(joined_token, tok, (size_t)joined_len);
            free(tok);
#endif
        } else if (!strcmp(opt, "--rate")) {
            double rate = atof(val);
            if (!(rate > 0 && rate <= 1e9)) usage("--rate takes messages a second per sender");
            interval_ns = (long long)(1e9 / rate);
            pacing = 1;
        } else if (!strcmp(opt, "--stamp")) {
            unsigned char *tok;
            stamp_len = unhex(val, &tok);
            if (!stamp_len || stamp_len + STAMP_DIGITS > TAIL) usage("bad --stamp");
            memcpy(stamp_token, tok, (size_t)stamp_len);
            free(tok);
        } else if (!strcmp(opt, "--samples")) {
            samples_path = val;
        } else if (!strcmp(opt, "--ping")) {
            ping_mode = !strcmp(val, "anonchat") ? PING_ANONCHAT
                        : !strcmp(val, "irc")    ? PING_IRC
                                                 : PING_NONE;
        } else {
            usage("unknown option");
        }
    }
    if (!count_len) usage("--count is required");
    if ((pacing || stamp_len || samples_path) && !(pacing && stamp_len && samples_path))
        usage("the latency workload needs --rate, --stamp and --samples");
    nconns = argc - i;
    if (nconns < 1) usage("no connections");
    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");
#ifdef FANOUT_TLS
    if (tls) {
        if (!joined_len) usage("--tls needs --joined");
        tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!tls_ctx || !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION))
            tls_fail("SSL_CTX_new");
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL); /* the pin is the check */
    }
#endif
    conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns) die("calloc");
    for (int k = 0; k < nconns; k++) add_conn(&conns[k], argv[i + k]);
    int watchers = 0;
    for (int k = 0; k < nconns; k++) watchers += conns[k].role == WATCHER;
    if (nsenders && watchers != 1 && !pacing) usage("senders need exactly one watcher");

    printf("{\"ready\": %d}\n", nconns); /* every member set up */
    fflush(stdout);

    struct conn stdin_conn = {.fd = 0}, timer_conn = {.fd = -1};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &stdin_conn};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &sev) < 0) die("epoll_ctl stdin");
    if (pacing) {
        timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (timer_fd < 0) die("timerfd_create");
        struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &timer_conn};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, timer_fd, &tev) < 0) die("epoll_ctl timerfd");
    }

    double deadline = now_s() + timeout_s;
    struct epoll_event events[256];
    for (;;) {
        if (limit >= 0 && going && complete()) {
            report(1);
            return 0;
        }
        int wait_ms = -1;
        if (limit >= 0) {
            double left = deadline - now_s();
            if (left <= 0) {
                report(1);
                return 1;
            }
            wait_ms = (int)(left * 1000) + 1;
        }
        int n = epoll_wait(epfd, events, 256, wait_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (c == &stdin_conn) {
                char cmd[64];
                ssize_t got = read(0, cmd, sizeof cmd);
                if (got <= 0) {
                    report(1);
                    return 0;
                }
                for (ssize_t j = 0; j < got; j++) {
                    if (cmd[j] == 'g') go();
                    else if (cmd[j] == 's') report(0);
                    else if (cmd[j] == 'm') measuring = 1;
                    else if (cmd[j] == 'e') measuring = 0;
                    else if (cmd[j] == 'q') {
                        report(1);
                        return 0;
                    }
                }
                continue;
            }
            if (c == &timer_conn) {
                if (going) on_timer();
                continue;
            }
            if (!c->open) continue;
            if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_read(c);
            if (c->open && (events[k].events & EPOLLOUT)) flush_out(c);
        }
    }
}
