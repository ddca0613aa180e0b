// mqttload: a small closed-loop MQTT 3.1.1 load generator (QoS 0/1), single thread, epoll.
// Scenarios: fanout (1 pub -> S subs, one topic), fanin (P pubs -> 1 sub on bench/#), pairs (P pub/sub pairs),
// connect (--conns threads, each in a loop: connect, CONNECT -> CONNACK, DISCONNECT, wait for the close).
// Transports: plain TCP, --tls 1 (OpenSSL, no certificate check, full handshake every connection),
// --ws 1 (WebSocket, path --ws-path, subprotocol mqtt; binary frames masked with the key 0: servers
// accept it and unmask as always, and it spares the loader the XOR; RFC 6455's unpredictable keys
// protect proxies' caches, which loopback has none of), or both (wss).
// Each publisher keeps at most --window messages not yet delivered to all of its subscribers (and, at
// QoS 1, not yet PUBACKed), so the broker is driven at its sustainable rate, not flooded.
// --clean 0: persistent sessions (clean session 0, client ids ld-<n> stable across runs) and a
// DISCONNECT at the end. Output: one JSON line. Build: cc -O2 -o mqttload mqttload.c -lssl -lcrypto -lpthread
// (or cc -O2 -DNO_TLS -o mqttload mqttload.c -lpthread without OpenSSL's headers: --tls 1 then fails).
// Copied from the team's shared tools (shared/tools/mqttload.c); bench/run.mjs compiles it with cc -O2 into a cache dir.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifndef NO_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#else
typedef struct ssl_st SSL;
#endif

typedef struct {
  int fd, is_pub, id, ready;           // ready: CONNACK (pub) / SUBACK (sub) seen
  SSL *ssl;                            // --tls 1
  unsigned char *rbuf; size_t rlen, rcap;  // MQTT bytes received
  unsigned char *wbuf; size_t wlen, wcap, woff;  // bytes for the socket (WebSocket: framed)
  unsigned char *pbuf; size_t plen, pcap;  // --ws 1: MQTT bytes not framed yet
  unsigned char *ibuf; size_t ilen, icap;  // --ws 1: WebSocket bytes received, not unframed yet
  uint64_t sent, acked, recv;          // pub: sent/acked; sub: recv
  uint16_t pid;
  int nsubs;                           // pub: subscribers that receive each message
  uint64_t delivered;                  // pub: deliveries of its messages seen by subs
} conn;

static const char *host = "127.0.0.1"; static int port = 1883, qos = 0, size = 64, window = 64;
static int npub = 1, nsub = 1, clean = 1; static double duration = 5, warm = 1; static const char *scen = "fanout";
static int use_tls, use_ws, nconns = 8; static const char *ws_path = "/mqtt";
#ifndef NO_TLS
static SSL_CTX *tls_ctx;
#endif
static conn *C; static int nconn; static int ep;
static uint64_t hist[64 * 64]; static uint64_t lat_n, meas_recv, dups;
static int measuring;
static int connect_scen; // --scenario connect: a broken connection is counted by its thread, not fatal
static volatile int conn_phase; // --scenario connect: 0 warmup, 1 measuring, 2 stop

static uint64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000ull + t.tv_nsec; }
static void die(const char *m) { perror(m); exit(2); }
static void put(unsigned char **buf, size_t *len, size_t *cap, const void *p, size_t n) {
  if (*len + n > *cap) { *cap = (*len + n) * 2; *buf = realloc(*buf, *cap); }
  memcpy(*buf + *len, p, n); *len += n;
}
// MQTT bytes out: straight to the socket buffer, or (WebSocket) collected and framed at flush().
static void wput(conn *c, const void *p, size_t n) {
  if (use_ws) put(&c->pbuf, &c->plen, &c->pcap, p, n); else put(&c->wbuf, &c->wlen, &c->wcap, p, n);
}
static size_t varint(unsigned char *o, size_t v) { size_t i = 0; do { unsigned char b = v % 128; v /= 128; if (v) b |= 128; o[i++] = b; } while (v); return i; }

// Transport: plain socket or TLS. Both return bytes moved, 0 at EOF (read), -1 when it would block
// (or a blocking read timed out), -2 (write) when the connection is broken.
static ssize_t tx_write(conn *c, const void *p, size_t n) {
#ifndef NO_TLS
  if (c->ssl) {
    int k = SSL_write(c->ssl, p, (int)n);
    if (k > 0) return k;
    int e = SSL_get_error(c->ssl, k);
    return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? -1 : -2;
  }
#endif
  ssize_t k = write(c->fd, p, n);
  if (k >= 0) return k;
  return errno == EAGAIN ? -1 : -2;
}
static ssize_t tx_read(conn *c, void *p, size_t n) {
#ifndef NO_TLS
  if (c->ssl) {
    int k = SSL_read(c->ssl, p, (int)n); if (k > 0) return k;
    int e = SSL_get_error(c->ssl, k); if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
    if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL || connect_scen) return 0; // close_notify, closed without one; connect: the thread counts it
    fprintf(stderr, "SSL_read: error %d\n", e); ERR_print_errors_fp(stderr); exit(2);
  }
#endif
  ssize_t k = read(c->fd, p, n);
  if (k >= 0) return k;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
  if (errno != ECONNRESET && !connect_scen) die("read");
  return 0;
}
// One client WebSocket frame: FIN + opcode, masked with the key 0 (the payload stays as it is).
static void ws_frame(conn *c, unsigned char op, const unsigned char *p, size_t n) {
  unsigned char h[14]; size_t k = 0; h[k++] = 0x80 | op;
  if (n < 126) h[k++] = 0x80 | n;
  else if (n < 65536) { h[k++] = 0x80 | 126; h[k++] = n >> 8; h[k++] = n & 255; }
  else { h[k++] = 0x80 | 127; for (int i = 7; i >= 0; i--) h[k++] = (n >> (8 * i)) & 255; }
  memset(h + k, 0, 4); k += 4;
  put(&c->wbuf, &c->wlen, &c->wcap, h, k); put(&c->wbuf, &c->wlen, &c->wcap, p, n);
}
static void flush(conn *c) {
  if (use_ws && c->plen) { ws_frame(c, 2, c->pbuf, c->plen); c->plen = 0; }
  while (c->woff < c->wlen) {
    ssize_t k = tx_write(c, c->wbuf + c->woff, c->wlen - c->woff);
    if (k == -2 && !connect_scen) { fprintf(stderr, "write: connection %d broken\n", (int)(c - C)); exit(2); }
    if (k < 0) break;
    c->woff += k;
  }
  if (c->woff == c->wlen) c->woff = c->wlen = 0;
}
// Moves the payloads of complete server frames from ibuf to rbuf (MQTT bytes); pings get a pong.
// Returns 0 when the server sent a close frame.
static int ws_unframe(conn *c) {
  size_t off = 0; int open = 1;
  while (c->ilen - off >= 2) {
    unsigned char *h = c->ibuf + off; size_t n = h[1] & 127, k = 2;
    if (n == 126) { if (c->ilen - off < 4) break; n = (h[2] << 8) | h[3]; k = 4; }
    else if (n == 127) { if (c->ilen - off < 10) break; n = 0; for (int i = 0; i < 8; i++) n = (n << 8) | h[2 + i]; k = 10; }
    if (h[1] & 128) k += 4; // servers do not mask; skip a key if one is there anyway
    if (c->ilen - off < k + n) break;
    int op = h[0] & 15;
    if (op == 0 || op == 2) {
      if (c->rcap - c->rlen < n) { c->rcap = (c->rlen + n) * 2 + 131072; c->rbuf = realloc(c->rbuf, c->rcap); }
      memcpy(c->rbuf + c->rlen, h + k, n); c->rlen += n;
    } else if (op == 9) ws_frame(c, 10, h + k, n);
    else if (op == 8) open = 0;
    else if (op == 1) { fprintf(stderr, "text frame from the broker\n"); exit(2); }
    off += k + n;
  }
  memmove(c->ibuf, c->ibuf + off, c->ilen - off); c->ilen -= off;
  return open;
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
  while (c->sent * c->nsubs - c->delivered < (uint64_t)window * c->nsubs && (qos == 0 || c->sent - c->acked < (uint64_t)window) && c->wlen + c->plen < 1 << 20)
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
    unsigned char **b = use_ws ? &c->ibuf : &c->rbuf; size_t *len = use_ws ? &c->ilen : &c->rlen, *cap = use_ws ? &c->icap : &c->rcap;
    if (*cap - *len < 65536) { *cap = *cap * 2 + 131072; *b = realloc(*b, *cap); }
    ssize_t k = tx_read(c, *b + *len, *cap - *len);
    if (k < 0) break;
    if (k == 0) { fprintf(stderr, "broker closed connection %d\n", (int)(c - C)); exit(2); }
    *len += k;
  }
  if (use_ws && !ws_unframe(c)) { fprintf(stderr, "broker closed the WebSocket of connection %d\n", (int)(c - C)); exit(2); }
  size_t off = 0;
  while (c->rlen - off >= 2) {
    size_t rl = 0, mul = 1, i = 1; int ok = 0;
    while (off + i < c->rlen && i <= 4) { unsigned char d = c->rbuf[off + i]; rl += (d & 127) * mul; mul *= 128; i++; if (!(d & 128)) { ok = 1; break; } }
    if (!ok || c->rlen - off < i + rl) break;
    on_packet(c, c->rbuf[off], c->rbuf + off + i, rl); off += i + rl;
  }
  memmove(c->rbuf, c->rbuf + off, c->rlen - off); c->rlen -= off;
}
// Blocking writes and reads for the set-up (TLS handshake, WebSocket upgrade) and the connect scenario.
static int write_all(conn *c, const void *p, size_t n) {
  for (size_t off = 0; off < n;) { ssize_t k = tx_write(c, (const char *)p + off, n - off); if (k <= 0) return -1; off += k; }
  return 0;
}
// Connects c->fd (blocking) and does the TLS handshake and the WebSocket upgrade; 0 or an error text.
static const char *establish(conn *c) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) }; inet_pton(AF_INET, host, &a.sin_addr);
  c->fd = socket(AF_INET, SOCK_STREAM, 0); int one = 1; setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = { 5, 0 }; setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv); // a stalled broker fails, not hangs
  if (connect(c->fd, (void *)&a, sizeof a) < 0) return "connect refused";
#ifndef NO_TLS
  if (use_tls) {
    c->ssl = SSL_new(tls_ctx); SSL_set_fd(c->ssl, c->fd);
    if (SSL_connect(c->ssl) != 1) { ERR_print_errors_fp(stderr); return "TLS handshake failed"; }
  }
#endif
  if (use_ws) {
    char req[512]; int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n", ws_path, host, port);
    if (write_all(c, req, n) < 0) return "WebSocket upgrade: write failed";
    char resp[4096]; size_t got = 0; char *end = NULL;
    while (!end && got < sizeof resp - 1) {
      ssize_t k = tx_read(c, resp + got, sizeof resp - 1 - got); if (k <= 0) return "WebSocket upgrade: no answer";
      got += k; resp[got] = 0; end = strstr(resp, "\r\n\r\n");
    }
    if (!end || strncmp(resp, "HTTP/1.1 101", 12)) return "WebSocket upgrade refused";
    size_t rest = got - (end + 4 - resp); // bytes after the headers are WebSocket frames already
    if (rest) put(&c->ibuf, &c->ilen, &c->icap, end + 4, rest);
  }
  return NULL;
}
static int opened;
static void open_conn(conn *c) {
  const char *err = establish(c);
  if (err) { fprintf(stderr, "connection %d: %s\n", (int)(c - C), err); exit(2); }
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
    for (int i = 0; i < nconn; i++) { can_publish(&C[i]); if (C[i].wlen || C[i].plen) flush(&C[i]); }
  }
}
// --scenario connect: each thread loops connect (TCP, TLS, WebSocket) -> CONNECT -> CONNACK -> DISCONNECT -> the
// broker's close. Latency: from socket() to CONNACK. Counted: CONNACKs inside the measured interval.
typedef struct { pthread_t t; int id; uint64_t done, measured, failed; uint64_t hist[64 * 64]; } connector;
static int read_mqtt_packet(conn *c, unsigned char *out, size_t cap) { // blocking; returns the packet's length or -1
  for (;;) {
    if (use_ws && !ws_unframe(c)) return -1;
    if (c->rlen >= 2 && c->rlen >= 2u + c->rbuf[1] && !(c->rbuf[1] & 128)) {
      size_t n = 2 + c->rbuf[1]; if (n > cap) return -1;
      memcpy(out, c->rbuf, n); memmove(c->rbuf, c->rbuf + n, c->rlen - n); c->rlen -= n; return (int)n;
    }
    unsigned char **b = use_ws ? &c->ibuf : &c->rbuf; size_t *len = use_ws ? &c->ilen : &c->rlen, *cap2 = use_ws ? &c->icap : &c->rcap;
    if (*cap2 - *len < 4096) { *cap2 = *cap2 * 2 + 8192; *b = realloc(*b, *cap2); }
    ssize_t k = tx_read(c, *b + *len, *cap2 - *len); if (k <= 0) return -1;
    *len += k;
  }
}
static void conn_close(conn *c) {
  // RST instead of FIN, once the broker has closed (or on failure): no TIME_WAIT pile-up in the loader.
  struct linger l = { 1, 0 }; setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
#ifndef NO_TLS
  if (c->ssl) { SSL_free(c->ssl); c->ssl = NULL; }
#endif
  close(c->fd); c->rlen = c->wlen = c->woff = c->plen = c->ilen = 0;
}
static void *connector_main(void *arg) {
  connector *k = arg; conn c = { 0 }; uint64_t n = 0;
  while (conn_phase < 2) {
    uint64_t t0 = now_ns(); const char *err = establish(&c);
    if (!err) {
      char id[48]; int il = sprintf(id, "cr-%d-%d-%llu", getpid(), k->id, (unsigned long long)n++);
      unsigned char p[96]; size_t m = 0;
      p[m++] = 0x10; p[m++] = 10 + 2 + il; memcpy(p + m, "\0\4MQTT\4\2\0\x3c", 10); m += 10;
      p[m++] = 0; p[m++] = il; memcpy(p + m, id, il); m += il;
      wput(&c, p, m); flush(&c); if (c.wlen) err = "CONNECT: write failed";
    }
    unsigned char a[8];
    if (!err && (read_mqtt_packet(&c, a, sizeof a) != 4 || a[0] != 0x20 || a[3] != 0)) err = "no CONNACK, or refused";
    uint64_t t1 = now_ns();
    if (err) { if (conn_phase < 2) { k->failed++; if (k->failed <= 3) fprintf(stderr, "connect: %s\n", err); } conn_close(&c); continue; }
    k->done++;
    if (conn_phase == 1) {
      k->measured++;
      uint64_t us = (t1 - t0) / 1000; int e = 0; while ((us >> e) >= 64 && e < 63) e++;
      int idx = e * 64 + (int)(us >> e); if (idx >= 64 * 64) idx = 64 * 64 - 1; k->hist[idx]++;
    }
    unsigned char d[2] = { 0xe0, 0 }; wput(&c, d, 2); flush(&c);
    for (unsigned char sink[256]; read_mqtt_packet(&c, sink, sizeof sink) >= 0;) {} // until the broker closes
    conn_close(&c);
  }
  free(c.rbuf); free(c.wbuf); free(c.pbuf); free(c.ibuf);
  return NULL;
}
static int run_connect(void) {
  connector *ks = calloc(nconns, sizeof *ks);
  for (int i = 0; i < nconns; i++) { ks[i].id = i; pthread_create(&ks[i].t, NULL, connector_main, &ks[i]); }
  usleep((useconds_t)(warm * 1e6));
  struct rusage u0; getrusage(RUSAGE_SELF, &u0); uint64_t t0 = now_ns(); conn_phase = 1;
  usleep((useconds_t)(duration * 1e6));
  conn_phase = 2; double el = (now_ns() - t0) / 1e9; struct rusage u1; getrusage(RUSAGE_SELF, &u1);
  uint64_t done = 0, measured = 0, failed = 0;
  for (int i = 0; i < nconns; i++) {
    pthread_join(ks[i].t, NULL); done += ks[i].done; measured += ks[i].measured; failed += ks[i].failed;
    for (int j = 0; j < 64 * 64; j++) { hist[j] += ks[i].hist[j]; lat_n += ks[i].hist[j]; }
  }
  double cpu = (u1.ru_utime.tv_sec - u0.ru_utime.tv_sec) + (u1.ru_stime.tv_sec - u0.ru_stime.tv_sec) + ((u1.ru_utime.tv_usec - u0.ru_utime.tv_usec) + (u1.ru_stime.tv_usec - u0.ru_stime.tv_usec)) / 1e6;
  // delivered_per_s / received / lost keep run.mjs's names: connections per second, connections, failures.
  printf("{\"scenario\":\"connect\",\"transport\":\"%s\",\"conns\":%d,\"seconds\":%.2f,\"delivered_per_s\":%.0f,\"received\":%llu,"
         "\"expected\":%llu,\"lost\":%llu,\"lat_us_p50\":%.0f,\"lat_us_p99\":%.0f,\"lat_us_p999\":%.0f,\"loadgen_cpu_s\":%.2f}\n",
         use_tls ? (use_ws ? "wss" : "tls") : (use_ws ? "ws" : "tcp"), nconns, el, measured / el, (unsigned long long)done,
         (unsigned long long)(done + failed), (unsigned long long)failed, lat_q(0.5), lat_q(0.99), lat_q(0.999), cpu);
  return 0;
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
    else if (!strcmp(k, "--tls")) use_tls = atoi(v); else if (!strcmp(k, "--ws")) use_ws = atoi(v);
    else if (!strcmp(k, "--ws-path")) ws_path = v; else if (!strcmp(k, "--conns")) nconns = atoi(v);
    else if (!strcmp(k, "--duration")) duration = atof(v); else if (!strcmp(k, "--warmup")) warm = atof(v);
    else { fprintf(stderr, "unknown option %s\n", k); return 64; }
  }
  if (size < 24) size = 24;
  if (!strcmp(scen, "fanout")) npub = 1; else if (!strcmp(scen, "fanin")) nsub = 1; else if (!strcmp(scen, "pairs")) nsub = npub;
  else if (strcmp(scen, "connect")) { fprintf(stderr, "scenario: fanout|fanin|pairs|connect\n"); return 64; }
  struct rlimit rl = { 1 << 20, 1 << 20 }; setrlimit(RLIMIT_NOFILE, &rl);
  signal(SIGPIPE, SIG_IGN); // a broker closing first must show as an error, not kill the loader
  if (use_tls) {
#ifdef NO_TLS
    fprintf(stderr, "--tls 1: this mqttload was built without OpenSSL (install libssl-dev)\n"); return 64;
#else
    tls_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL); // the load measures the broker, not certificate checks
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF); // every connection a full handshake
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#endif
  }
  if (!strcmp(scen, "connect")) { connect_scen = 1; return run_connect(); }
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
