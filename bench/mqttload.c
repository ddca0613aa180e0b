// mqttload: a small closed-loop MQTT 3.1.1 load generator (QoS 0/1), single thread, epoll.
// Scenarios: fanout (1 pub -> S subs, one topic), fanin (P pubs -> 1 sub on bench/#), pairs (P pub/sub pairs).
// Each publisher keeps at most --window messages not yet delivered to all of its subscribers (and, at
// QoS 1, not yet PUBACKed), so the broker is driven at its sustainable rate, not flooded.
// --clean 0: persistent sessions (clean session 0, client ids ld-<n> stable across runs) and a
// DISCONNECT at the end. Output: one JSON line. Build: cc -O2 -o mqttload mqttload.c
// Copied from the team's shared tools (shared/tools/mqttload.c); bench/run.mjs compiles it with cc -O2 into a cache dir.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int fd, is_pub, id, ready;           // ready: CONNACK (pub) / SUBACK (sub) seen
  unsigned char *rbuf; size_t rlen, rcap;
  unsigned char *wbuf; size_t wlen, wcap, woff;
  uint64_t sent, acked, recv;          // pub: sent/acked; sub: recv
  uint16_t pid;
  int nsubs;                           // pub: subscribers that receive each message
  uint64_t delivered;                  // pub: deliveries of its messages seen by subs
} conn;

static const char *host = "127.0.0.1"; static int port = 1883, qos = 0, size = 64, window = 64;
static int npub = 1, nsub = 1, clean = 1; static double duration = 5, warm = 1; static const char *scen = "fanout";
static conn *C; static int nconn; static int ep;
static uint64_t hist[64 * 64]; static uint64_t lat_n, meas_recv, dups;
static int measuring;

static uint64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000ull + t.tv_nsec; }
static void die(const char *m) { perror(m); exit(2); }
static void wput(conn *c, const void *p, size_t n) {
  if (c->wlen + n > c->wcap) { c->wcap = (c->wlen + n) * 2; c->wbuf = realloc(c->wbuf, c->wcap); }
  memcpy(c->wbuf + c->wlen, p, n); c->wlen += n;
}
static size_t varint(unsigned char *o, size_t v) { size_t i = 0; do { unsigned char b = v % 128; v /= 128; if (v) b |= 128; o[i++] = b; } while (v); return i; }
static void flush(conn *c) {
  while (c->woff < c->wlen) {
    ssize_t k = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
    if (k < 0) { if (errno == EAGAIN) break; die("write"); }
    c->woff += k;
  }
  if (c->woff == c->wlen) c->woff = c->wlen = 0;
}
static void topic_of(conn *c, char *t) {
  if (!strcmp(scen, "fanout")) strcpy(t, "bench/fan");
  else sprintf(t, "bench/t%d", c->id);
}
static void send_connect(conn *c) {
  char id[32]; int il = clean ? sprintf(id, "ld-%d-%d", getpid(), (int)(c - C)) : sprintf(id, "ld-%d", (int)(c - C));
  unsigned char p[128]; size_t n = 0;
  unsigned char body[96]; size_t b = 0;
  memcpy(body, "\0\4MQTT\4\2\0\x3c", 10); b = 10;      // v3.1.1, clean session, keepalive 60
  if (!clean) body[7] = 0;                               // connect flags: clean session 0
  body[b++] = il >> 8; body[b++] = il & 255; memcpy(body + b, id, il); b += il;
  p[n++] = 0x10; n += varint(p + n, b); memcpy(p + n, body, b); n += b; wput(c, p, n);
}
static void send_subscribe(conn *c, const char *t) {
  unsigned char p[256]; size_t n = 0, tl = strlen(t), rl = 2 + 2 + tl + 1;
  p[n++] = 0x82; n += varint(p + n, rl); p[n++] = 0; p[n++] = 1; p[n++] = tl >> 8; p[n++] = tl & 255;
  memcpy(p + n, t, tl); n += tl; p[n++] = qos; wput(c, p, n);
}
static void send_publish(conn *c) {
  char t[64]; topic_of(c, t); size_t tl = strlen(t);
  unsigned char p[65600]; size_t n = 0, rl = 2 + tl + (qos ? 2 : 0) + size;
  p[n++] = 0x30 | (qos << 1); n += varint(p + n, rl); p[n++] = tl >> 8; p[n++] = tl & 255; memcpy(p + n, t, tl); n += tl;
  if (qos) { if (++c->pid == 0) c->pid = 1; p[n++] = c->pid >> 8; p[n++] = c->pid & 255; }
  uint64_t hdr[3] = { (uint64_t)c->id, c->sent, now_ns() };
  memset(p + n, 'x', size); memcpy(p + n, hdr, size < 24 ? size : 24); n += size;
  wput(c, p, n); c->sent++;
}
static void lat_add(uint64_t ns) {
  uint64_t us = ns / 1000; int e = 0; while ((us >> e) >= 64 && e < 63) e++;
  int idx = e * 64 + (int)(us >> e); if (idx >= 64 * 64) idx = 64 * 64 - 1; hist[idx]++; lat_n++;
}
static double lat_q(double q) {
  uint64_t want = (uint64_t)(q * lat_n), acc = 0;
  for (int i = 0; i < 64 * 64; i++) { acc += hist[i]; if (acc > want) { int e = i / 64, m = i % 64; return (double)((uint64_t)m << e); } }
  return 0;
}
static void can_publish(conn *c) {
  if (!c->is_pub || !c->ready) return;
  while (c->sent * c->nsubs - c->delivered < (uint64_t)window * c->nsubs && (qos == 0 || c->sent - c->acked < (uint64_t)window) && c->wlen < 1 << 20)
    send_publish(c);
}
static void on_packet(conn *c, unsigned char type, unsigned char *b, size_t n) {
  switch (type >> 4) {
  case 2: // CONNACK
    if (n < 2 || b[1] != 0) { fprintf(stderr, "CONNACK refused\n"); exit(2); }
    if (c->is_pub) c->ready = 1; else { char t[64]; if (!strcmp(scen, "fanin")) strcpy(t, "bench/#"); else topic_of(c, t); send_subscribe(c, t); }
    break;
  case 9: c->ready = 1; break; // SUBACK
  case 4: c->acked++; break;   // PUBACK
  case 3: {                    // PUBLISH
    size_t tl = (b[0] << 8) | b[1], off = 2 + tl; int q = (type >> 1) & 3;
    if (q) { unsigned char a[4] = { 0x40, 2, b[off], b[off + 1] }; wput(c, a, 4); off += 2; }
    uint64_t hdr[3] = { 0, 0, 0 }; if (n - off >= 24) memcpy(hdr, b + off, 24);
    c->recv++;
    if (hdr[0] < (uint64_t)npub) { conn *p = &C[nsub + hdr[0]]; if (p->is_pub) { p->delivered++; can_publish(p); } }
    if (measuring) { meas_recv++; lat_add(now_ns() - hdr[2]); }
    break; }
  }
}
static void on_read(conn *c) {
  for (;;) {
    if (c->rcap - c->rlen < 65536) { c->rcap = c->rcap * 2 + 131072; c->rbuf = realloc(c->rbuf, c->rcap); }
    ssize_t k = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (k < 0) { if (errno == EAGAIN) break; die("read"); }
    if (k == 0) { fprintf(stderr, "broker closed connection %d\n", (int)(c - C)); exit(2); }
    c->rlen += k;
  }
  size_t off = 0;
  while (c->rlen - off >= 2) {
    size_t rl = 0, mul = 1, i = 1; int ok = 0;
    while (off + i < c->rlen && i <= 4) { unsigned char d = c->rbuf[off + i]; rl += (d & 127) * mul; mul *= 128; i++; if (!(d & 128)) { ok = 1; break; } }
    if (!ok || c->rlen - off < i + rl) break;
    on_packet(c, c->rbuf[off], c->rbuf + off + i, rl); off += i + rl;
  }
  memmove(c->rbuf, c->rbuf + off, c->rlen - off); c->rlen -= off;
}
static int opened;
static void open_conn(conn *c) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) }; inet_pton(AF_INET, host, &a.sin_addr);
  c->fd = socket(AF_INET, SOCK_STREAM, 0); int one = 1; setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (void *)&a, sizeof a) < 0) die("connect");
  fcntl(c->fd, F_SETFL, O_NONBLOCK);
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c }; epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  send_connect(c); flush(c); opened++;
}
static void loop_for(double secs, int (*until)(void)) {
  uint64_t end = now_ns() + (uint64_t)(secs * 1e9); struct epoll_event evs[256];
  while (now_ns() < end) {
    if (until && until()) return;
    int n = epoll_wait(ep, evs, 256, 5);
    for (int i = 0; i < n; i++) { conn *c = evs[i].data.ptr; if (evs[i].events & EPOLLIN) on_read(c); }
    for (int i = 0; i < nconn; i++) { can_publish(&C[i]); if (C[i].wlen) flush(&C[i]); }
  }
}
static int all_ready(void) { for (int i = 0; i < opened; i++) if (!C[i].ready) return 0; return 1; }
static int pubs_stopped;
int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--host")) host = v; else if (!strcmp(k, "--port")) port = atoi(v); else if (!strcmp(k, "--scenario")) scen = v;
    else if (!strcmp(k, "--qos")) qos = atoi(v); else if (!strcmp(k, "--size")) size = atoi(v); else if (!strcmp(k, "--window")) window = atoi(v);
    else if (!strcmp(k, "--pubs")) npub = atoi(v); else if (!strcmp(k, "--subs")) nsub = atoi(v);
    else if (!strcmp(k, "--clean")) clean = atoi(v);
    else if (!strcmp(k, "--duration")) duration = atof(v); else if (!strcmp(k, "--warmup")) warm = atof(v);
    else { fprintf(stderr, "unknown option %s\n", k); return 64; }
  }
  if (size < 24) size = 24;
  if (!strcmp(scen, "fanout")) npub = 1; else if (!strcmp(scen, "fanin")) nsub = 1; else if (!strcmp(scen, "pairs")) nsub = npub;
  else { fprintf(stderr, "scenario: fanout|fanin|pairs\n"); return 64; }
  struct rlimit rl = { 1 << 20, 1 << 20 }; setrlimit(RLIMIT_NOFILE, &rl);
  nconn = npub + nsub; C = calloc(nconn, sizeof *C); ep = epoll_create1(0);
  for (int i = 0; i < nsub; i++) { C[i].id = i; open_conn(&C[i]); }
  loop_for(20, all_ready);
  if (!all_ready()) { fprintf(stderr, "subscribers not ready\n"); return 2; }
  for (int i = 0; i < npub; i++) { conn *c = &C[nsub + i]; c->is_pub = 1; c->id = i; c->nsubs = !strcmp(scen, "fanout") ? nsub : 1; open_conn(c); }
  loop_for(20, all_ready);
  if (!all_ready()) { fprintf(stderr, "publishers not ready\n"); return 2; }
  loop_for(warm, NULL);
  uint64_t r0 = 0; for (int i = 0; i < nconn; i++) r0 += C[i].recv;
  measuring = 1; uint64_t t0 = now_ns(); struct rusage u0; getrusage(RUSAGE_SELF, &u0);
  loop_for(duration, NULL);
  double el = (now_ns() - t0) / 1e9; measuring = 0;
  uint64_t r1 = 0; for (int i = 0; i < nconn; i++) r1 += C[i].recv;
  struct rusage u1; getrusage(RUSAGE_SELF, &u1);
  double cpu = (u1.ru_utime.tv_sec - u0.ru_utime.tv_sec) + (u1.ru_stime.tv_sec - u0.ru_stime.tv_sec) + ((u1.ru_utime.tv_usec - u0.ru_utime.tv_usec) + (u1.ru_stime.tv_usec - u0.ru_stime.tv_usec)) / 1e6;
  // stop publishing and drain: everything sent must arrive
  int win0 = window; window = 0; uint64_t sent = 0, exp = 0, got = 0;
  for (int i = 0; i < nconn; i++) if (C[i].is_pub) { sent += C[i].sent; exp += C[i].sent * C[i].nsubs; }
  for (int k = 0; k < 40; k++) { got = 0; for (int i = 0; i < nconn; i++) got += C[i].recv; if (got >= exp) break; loop_for(0.05, NULL); }
  got = 0; for (int i = 0; i < nconn; i++) got += C[i].recv;
  (void)pubs_stopped; (void)dups;
  // Persistent sessions outlive this process: DISCONNECT, then wait for the broker to close each
  // connection, so it has taken every PUBACK sent before and the next run's sessions start empty.
  if (!clean) for (int i = 0; i < nconn; i++) {
    conn *c = &C[i]; unsigned char d[2] = { 0xe0, 0 }; char sink[4096]; struct timeval tv = { 5, 0 };
    fcntl(c->fd, F_SETFL, 0); setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    wput(c, d, 2); flush(c); while (read(c->fd, sink, sizeof sink) > 0) {}
    close(c->fd);
  }
  printf("{\"scenario\":\"%s\",\"qos\":%d,\"size\":%d,\"pubs\":%d,\"subs\":%d,\"window\":%d,\"seconds\":%.2f,"
         "\"delivered_per_s\":%.0f,\"sent\":%llu,\"expected\":%llu,\"received\":%llu,\"lost\":%lld,"
         "\"lat_us_p50\":%.0f,\"lat_us_p99\":%.0f,\"lat_us_p999\":%.0f,\"loadgen_cpu_s\":%.2f}\n",
         scen, qos, size, npub, nsub, win0, el, (r1 - r0) / el, (unsigned long long)sent, (unsigned long long)exp,
         (unsigned long long)got, (long long)(exp - got), lat_q(0.5), lat_q(0.99), lat_q(0.999), cpu);
  return 0;
}
