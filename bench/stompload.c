// stompload: a small closed-loop STOMP 1.2 load generator, single thread, epoll (mqttload.c's shape).
// --producers N connections SEND to --dest; --consumers M connections SUBSCRIBE to it first.
//   /topic/...: every consumer gets every message (ack auto); a message counts as delivered M times.
//   /queue/...: competing consumers, ack client-individual with prefetch-count --prefetch, every
//               MESSAGE ACKed at once; a message counts as delivered once.
// --persistent 1 adds persistent:true, --receipts 1 a receipt header to every SEND. Each producer keeps
// at most --window messages not yet delivered to all their receivers and (with receipts) not yet
// RECEIPTed, so the broker runs at the rate it sustains. Bodies (--size bytes, content-length) carry
// producer, sequence and send time; consumers measure end-to-end latency. After the measured interval
// sending stops and every message sent must arrive. Output: one JSON line, with mqttload's names
// (delivered_per_s, lost, lat_us_p99, ...), so bench/run.mjs reads both alike.
// Build: cc -O2 -o stompload stompload.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
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
  int fd, is_prod, id, ready;          // ready: CONNECTED (producer) / RECEIPT of SUBSCRIBE (consumer) seen
  unsigned char *rbuf; size_t rlen, rcap;
  unsigned char *wbuf; size_t wlen, wcap, woff;
  uint64_t sent, receipted, recv;      // producer: sent/receipted; consumer: recv
  uint64_t delivered;                  // producer: deliveries of its messages seen by consumers
} conn;

static const char *host = "127.0.0.1", *dest = "/topic/bench", *login = "guest", *passcode = "guest", *vhost = "/";
static int port = 61613, size = 64, window = 64, nprod = 1, ncons = 1, persistent = 0, receipts = 0, prefetch = 64, is_queue;
static double duration = 5, warm = 1;
static conn *C; static int nconn; static int ep;
static uint64_t hist[64 * 64]; static uint64_t lat_n, redelivered;
static int measuring;

static uint64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000ull + t.tv_nsec; }
static void die(const char *m) { perror(m); exit(2); }
static void wput(conn *c, const void *p, size_t n) {
  if (c->wlen + n > c->wcap) { c->wcap = (c->wlen + n) * 2; c->wbuf = realloc(c->wbuf, c->wcap); }
  memcpy(c->wbuf + c->wlen, p, n); c->wlen += n;
}
static void wstr(conn *c, const char *s) { wput(c, s, strlen(s) + 1); } // with the frame's NUL
static void flush(conn *c) {
  while (c->woff < c->wlen) {
    ssize_t k = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
    if (k < 0) { if (errno == EAGAIN) break; die("write"); }
    c->woff += k;
  }
  if (c->woff == c->wlen) c->woff = c->wlen = 0;
}
static void send_connect(conn *c) {
  char f[512];
  snprintf(f, sizeof f, "CONNECT\naccept-version:1.2\nhost:%s\nlogin:%s\npasscode:%s\nheart-beat:0,0\n\n", vhost, login, passcode);
  wstr(c, f);
}
static void send_subscribe(conn *c) {
  char f[512];
  if (is_queue) snprintf(f, sizeof f, "SUBSCRIBE\nid:0\ndestination:%s\nack:client-individual\nprefetch-count:%d\nreceipt:sub\n\n", dest, prefetch);
  else snprintf(f, sizeof f, "SUBSCRIBE\nid:0\ndestination:%s\nack:auto\nreceipt:sub\n\n", dest);
  wstr(c, f);
}
static void send_message(conn *c) {
  char h[256];
  int n = snprintf(h, sizeof h, "SEND\ndestination:%s\ncontent-type:application/octet-stream\ncontent-length:%d\n%s", dest, size,
                   persistent ? "persistent:true\n" : "");
  if (receipts) n += snprintf(h + n, sizeof h - n, "receipt:%llu\n", (unsigned long long)c->sent);
  h[n++] = '\n';
  wput(c, h, n);
  unsigned char body[65536]; uint64_t hdr[3] = { (uint64_t)c->id, c->sent, now_ns() };
  memset(body, 'x', size); memcpy(body, hdr, 24); body[size] = 0;
  wput(c, body, size + 1); c->sent++;
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
static int receivers(void) { return is_queue ? 1 : ncons; }
static void can_send(conn *c) {
  if (!c->is_prod || !c->ready) return;
  uint64_t r = receivers();
  while (c->sent * r - c->delivered < (uint64_t)window * r && (!receipts || c->sent - c->receipted < (uint64_t)window) && c->wlen < 1 << 20)
    send_message(c);
}
// The value of header `name` in the header block [h, end), or NULL; *len its length.
static const char *header(const char *h, const char *end, const char *name, size_t *len) {
  size_t nl = strlen(name);
  for (const char *p = h; p < end;) {
    const char *eol = memchr(p, '\n', end - p); if (!eol) eol = end;
    if ((size_t)(eol - p) > nl && p[nl] == ':' && !memcmp(p, name, nl)) { *len = eol - p - nl - 1; return p + nl + 1; }
    p = eol + 1;
  }
  return NULL;
}
static void on_frame(conn *c, const char *cmd, size_t cl, const char *h, const char *hend, const unsigned char *body, size_t blen) {
  size_t n;
  if (cl == 9 && !memcmp(cmd, "CONNECTED", 9)) {
    if (c->is_prod) c->ready = 1; else send_subscribe(c);
  } else if (cl == 7 && !memcmp(cmd, "RECEIPT", 7)) {
    const char *id = header(h, hend, "receipt-id", &n);
    if (id && n == 3 && !memcmp(id, "sub", 3)) c->ready = 1; else c->receipted++;
  } else if (cl == 7 && !memcmp(cmd, "MESSAGE", 7)) {
    if (is_queue) {
      const char *ack = header(h, hend, "ack", &n);
      if (!ack) { fprintf(stderr, "MESSAGE without an ack header\n"); exit(2); }
      wput(c, "ACK\nid:", 7); wput(c, ack, n); wput(c, "\n\n", 3); // "\n\n" and the NUL
      const char *rd = header(h, hend, "redelivered", &n);
      if (rd && n == 4 && !memcmp(rd, "true", 4)) redelivered++;
    }
    uint64_t hdr[3] = { UINT64_MAX, 0, 0 }; if (blen >= 24) memcpy(hdr, body, 24);
    c->recv++;
    if (hdr[0] < (uint64_t)nprod) { conn *p = &C[ncons + hdr[0]]; if (p->is_prod) { p->delivered++; can_send(p); } }
    if (measuring) lat_add(now_ns() - hdr[2]);
  } else if (cl == 5 && !memcmp(cmd, "ERROR", 5)) {
    const char *m = header(h, hend, "message", &n);
    fprintf(stderr, "ERROR from the broker on connection %d: %.*s\n", (int)(c - C), m ? (int)n : 0, m ? m : "");
    exit(2);
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
  for (;;) {
    while (off < c->rlen && (c->rbuf[off] == '\n' || c->rbuf[off] == '\r')) off++; // heart-beats, EOLs after NUL
    if (off >= c->rlen) break;
    const char *f = (const char *)c->rbuf + off, *end = (const char *)c->rbuf + c->rlen;
    const char *hdrs_end = memmem(f, end - f, "\n\n", 2);
    if (!hdrs_end) break;
    const char *eol = memchr(f, '\n', hdrs_end + 1 - f);
    size_t cl = eol - f; if (cl && f[cl - 1] == '\r') cl--;
    const char *h = eol + 1, *body = hdrs_end + 2; size_t n, blen;
    const char *len = header(h, hdrs_end + 1, "content-length", &n);
    if (len) {
      blen = strtoull(len, NULL, 10);
      if ((size_t)(end - body) < blen + 1) break;
    } else {
      const char *nul = memchr(body, 0, end - body); if (!nul) break;
      blen = nul - body;
    }
    on_frame(c, f, cl, h, hdrs_end + 1, (const unsigned char *)body, blen);
    off = body + blen + 1 - (const char *)c->rbuf;
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
    for (int i = 0; i < nconn; i++) { can_send(&C[i]); if (C[i].wlen) flush(&C[i]); }
  }
}
static int all_ready(void) { for (int i = 0; i < opened; i++) if (!C[i].ready) return 0; return 1; }
static uint64_t total_recv(void) { uint64_t r = 0; for (int i = 0; i < nconn; i++) r += C[i].recv; return r; }
static double cpu_s(void) { struct rusage u; getrusage(RUSAGE_SELF, &u); return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6; }
int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--host")) host = v; else if (!strcmp(k, "--port")) port = atoi(v); else if (!strcmp(k, "--dest")) dest = v;
    else if (!strcmp(k, "--producers")) nprod = atoi(v); else if (!strcmp(k, "--consumers")) ncons = atoi(v);
    else if (!strcmp(k, "--persistent")) persistent = atoi(v); else if (!strcmp(k, "--receipts")) receipts = atoi(v);
    else if (!strcmp(k, "--prefetch")) prefetch = atoi(v); else if (!strcmp(k, "--window")) window = atoi(v);
    else if (!strcmp(k, "--size")) size = atoi(v); else if (!strcmp(k, "--login")) login = v; else if (!strcmp(k, "--passcode")) passcode = v;
    else if (!strcmp(k, "--vhost")) vhost = v;
    else if (!strcmp(k, "--duration")) duration = atof(v); else if (!strcmp(k, "--warmup")) warm = atof(v);
    else { fprintf(stderr, "unknown option %s\n", k); return 64; }
  }
  if (size < 24) size = 24;
  if (size > 65535) size = 65535;
  if (!strncmp(dest, "/queue/", 7)) is_queue = 1;
  else if (strncmp(dest, "/topic/", 7)) { fprintf(stderr, "--dest: /topic/<name> or /queue/<name>\n"); return 64; }
  struct rlimit rl = { 1 << 20, 1 << 20 }; setrlimit(RLIMIT_NOFILE, &rl);
  signal(SIGPIPE, SIG_IGN);
  nconn = nprod + ncons; C = calloc(nconn, sizeof *C); ep = epoll_create1(0);
  for (int i = 0; i < ncons; i++) { C[i].id = i; open_conn(&C[i]); }
  loop_for(30, all_ready);
  if (!all_ready()) { fprintf(stderr, "consumers not ready\n"); return 2; }
  for (int i = 0; i < nprod; i++) { conn *c = &C[ncons + i]; c->is_prod = 1; c->id = i; open_conn(c); }
  loop_for(30, all_ready);
  if (!all_ready()) { fprintf(stderr, "producers not ready\n"); return 2; }
  loop_for(warm, NULL);
  uint64_t r0 = total_recv(); measuring = 1; uint64_t t0 = now_ns(); double cpu0 = cpu_s();
  loop_for(duration, NULL);
  double el = (now_ns() - t0) / 1e9, cpu = cpu_s() - cpu0; measuring = 0;
  uint64_t r1 = total_recv();
  // Stop sending and drain: everything sent must arrive (and be receipted).
  int win0 = window; window = 0; uint64_t sent = 0, exp = 0, rcpt = 0, got = 0;
  for (int i = 0; i < nconn; i++) if (C[i].is_prod) { sent += C[i].sent; exp += C[i].sent * receivers(); }
  for (int k = 0; k < 200; k++) {
    got = total_recv(); rcpt = 0; for (int i = 0; i < nconn; i++) rcpt += C[i].receipted;
    if (got >= exp && (!receipts || rcpt >= sent)) break;
    loop_for(0.05, NULL);
  }
  got = total_recv(); rcpt = 0; for (int i = 0; i < nconn; i++) rcpt += C[i].receipted;
  printf("{\"dest\":\"%s\",\"persistent\":%d,\"receipts\":%d,\"size\":%d,\"producers\":%d,\"consumers\":%d,\"window\":%d,\"prefetch\":%d,"
         "\"seconds\":%.2f,\"delivered_per_s\":%.0f,\"sent\":%llu,\"expected\":%llu,\"received\":%llu,\"lost\":%lld,"
         "\"receipts_missing\":%lld,\"redelivered\":%llu,\"lat_us_p50\":%.0f,\"lat_us_p99\":%.0f,\"lat_us_p999\":%.0f,\"loadgen_cpu_s\":%.2f}\n",
         dest, persistent, receipts, size, nprod, ncons, win0, is_queue ? prefetch : 0, el, (r1 - r0) / el,
         (unsigned long long)sent, (unsigned long long)exp, (unsigned long long)got, (long long)(exp - got),
         receipts ? (long long)(sent - rcpt) : 0LL, (unsigned long long)redelivered, lat_q(0.5), lat_q(0.99), lat_q(0.999), cpu);
  return 0;
}
