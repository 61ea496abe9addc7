/*
 * vsb-frontend: --bench, the plan and the guest side.
 *
 * --bench runs measurements through the backend and, in the same process and the same run,
 * the raw baselines without it. The host side of each port is played by a forked peer process
 * (discard, source or echo) connected to the backend's host endpoint for that port; the guest
 * side is this process, interrupt driven as in the scenarios. Nothing here asserts on time:
 * figures are printed, one line each, and summarised as median, min and max over the runs.
 */
#include "bench.h"

struct bench_options bopt = {
    .kinds = "all", .runs = 5, .bytes = 256ull << 20, .multi_bytes = 256ull << 20, .echo_n = 20000,
    .msg = 64, .port = 1, .multi_depth = 4, .sizes = "256,1024,4096,16384,32768", .ports = "1,8,64,511",
};

static bool bench_wants(const char *kind)
{
    if (!strcmp(bopt.kinds, "all"))
        return true;
    size_t n = strlen(kind);
    for (const char *c = bopt.kinds; (c = strstr(c, kind)); c += n)
        if ((c == bopt.kinds || c[-1] == ',') && (c[n] == 0 || c[n] == ','))
            return true;
    return false;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints median and spread of n values of one measurement. */
static void summary(const char *kind, const char *target, uint64_t param, const char *unit, const double *v,
                    unsigned n)
{
    if (!n)
        return;
    double s[BENCH_MAX_RUNS];
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double med = n & 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    out("SUMMARY kind=%s target=%s param=%" PRIu64 " unit=%s median=%.3f min=%.3f max=%.3f runs=%u", kind,
        target, param, unit, med, s[0], s[n - 1], n);
}

/* ---- the guest side through the backend ---- */

/* One turn of the guest: wait for calls (or the peer's report pipe), use what the device used, post more. */
static bool bench_iter(struct frontend *fe, int extra_fd, int timeout_ms)
{
    static struct pollfd pf[2 + 2 * MAX_QUEUES];
    /* Post what the guest wants to write before sleeping: a new target may have been set. */
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
        if (fe->port[id].exists && fe->port[id].tx_posted < fe->port[id].tx_target)
            fill_tx(fe, id);
    ctl_flush_pending(fe);
    for (unsigned i = 0; i < fe->needed_vqs; i++)
        vq_publish(&fe->vq[i]);
    unsigned n = 0;
    pf[n++] = (struct pollfd){ .fd = fe->vu.sock, .events = POLLIN };
    pf[n++] = (struct pollfd){ .fd = extra_fd, .events = POLLIN };
    for (unsigned i = 0; i < fe->needed_vqs; i++)
        pf[n++] = (struct pollfd){ .fd = fe->vq[i].call_fd, .events = POLLIN };
    int r = poll(pf, n, timeout_ms);
    if (r < 0 && errno != EINTR)
        die_code(EXIT_IO, "poll: %s", strerror(errno));
    if (r <= 0)
        return false;
    if (pf[0].revents)
        socket_event(fe);
    for (unsigned i = 0; i < fe->needed_vqs; i++) {
        if (!pf[2 + i].revents)
            continue;
        struct vq *q = &fe->vq[i];
        uint64_t v;
        if (read(q->call_fd, &v, sizeof v) == sizeof v)
            q->calls++;
        guest_drain(fe, q);
    }
    ctl_flush_pending(fe);
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
        if (fe->port[id].exists && fe->port[id].tx_posted < fe->port[id].tx_target)
            fill_tx(fe, id);
    for (unsigned i = 0; i < fe->needed_vqs; i++)
        vq_publish(&fe->vq[i]);
    return pf[1].revents != 0;
}

static bool port_ready_for_bench(const struct port *p)
{
    return p->exists && p->guest_open && (p->console || p->host_open);
}

static void bench_stalled(const char *what)
{
    die_code(EXIT_STALL, "benchmark: %s did not finish within --stall-timeout %.0f s", what, opt.stall_timeout);
}

/* Reads one report from the peer; PEER_CONNECTED or a byte count. */
static uint64_t peer_report(const struct peer *p)
{
    uint64_t v;
    if (read(p->rep, &v, sizeof v) != sizeof v)
        die_code(EXIT_IO, "benchmark: the host peer died (is the host endpoint %s right?)", bopt.host);
    return v;
}

/* Starts a peer on ports and waits until it is connected and the guest may write on each port. */
static struct peer bench_peer(struct frontend *fe, enum peer_mode mode, const unsigned *ports, unsigned n, uint64_t per_port,
                              unsigned chunk)
{
    struct peer p = peer_start(mode, ports, n, per_port, chunk, fe->vu.sock);
    bool connected = false;
    double until = now_s() + opt.stall_timeout;
    for (;;) {
        if (bench_iter(fe, p.rep, 50) && !connected)
            connected = peer_report(&p) == PEER_CONNECTED;
        /* A console may be written before the host opens it, but bytes without a peer are dropped: wait
         * for the backend's PORT_OPEN as for a generic port, unless the backend sends none for consoles. */
        bool all = connected, patience = now_s() > until - opt.stall_timeout + 1;
        for (unsigned i = 0; all && i < n; i++) {
            const struct port *q = &fe->port[ports[i]];
            all = port_ready_for_bench(q) && (q->host_open || patience);
        }
        if (all)
            return p;
        if (now_s() > until)
            bench_stalled("connecting the host peer");
    }
}

/* Kills the peer and waits until the backend told the guest that the host side closed. */
static void bench_peer_done(struct frontend *fe, struct peer *p, const unsigned *ports, unsigned n)
{
    peer_stop(p);
    double until = now_s() + 2;
    for (;;) {
        bool closed = true;
        for (unsigned i = 0; closed && i < n; i++)
            closed = !fe->port[ports[i]].host_open;
        if (closed || now_s() > until)
            return; /* a backend that does not report host close is waited for 2 s, no more */
        bench_iter(fe, -1, 20);
    }
}

/* Guest -> host on the given ports, each per_port bytes in tx buffers of chunk bytes; MB/s of the total. */
static double bridge_gh(struct frontend *fe, const unsigned *ports, unsigned n, uint64_t per_port, unsigned chunk, double *cpu_per_gb)
{
    struct peer p = bench_peer(fe, PEER_DISCARD, ports, n, per_port, chunk);
    opt.tx_chunk = chunk;
    double c0 = bopt.backend_pid ? proc_cpu_s(bopt.backend_pid) : -1;
    double t0 = now_s(), until = t0 + opt.stall_timeout;
    for (unsigned i = 0; i < n; i++) {
        struct port *q = &fe->port[ports[i]];
        q->tx_target = q->tx_posted + per_port;
    }
    uint64_t got = 0;
    while (!got) {
        if (bench_iter(fe, p.rep, 100))
            got = peer_report(&p);
        if (now_s() > until)
            bench_stalled("guest->host");
    }
    double t = now_s() - t0;
    double c1 = c0 >= 0 ? proc_cpu_s(bopt.backend_pid) : -1;
    /* The guest has its buffers back before the next measurement starts. */
    for (;;) {
        bool idle = true;
        for (unsigned i = 0; idle && i < n; i++)
            idle = fe->port[ports[i]].tx_done == fe->port[ports[i]].tx_target;
        if (idle)
            break;
        bench_iter(fe, -1, 100);
        if (now_s() > until)
            bench_stalled("guest->host completions");
    }
    bench_peer_done(fe, &p, ports, n);
    *cpu_per_gb = c0 >= 0 && c1 >= 0 ? (c1 - c0) / ((double)got / 1e9) : -1;
    return (double)got / t / 1e6;
}

static double bridge_hg(struct frontend *fe, unsigned port, uint64_t bytes, double *cpu_per_gb)
{
    struct peer p = bench_peer(fe, PEER_SOURCE, &port, 1, bytes, 65536);
    struct port *q = &fe->port[port];
    uint64_t want = q->rx_bytes + bytes;
    double c0 = bopt.backend_pid ? proc_cpu_s(bopt.backend_pid) : -1;
    double t0 = now_s(), until = t0 + opt.stall_timeout;
    if (write(p.go, "g", 1) != 1)
        die_code(EXIT_IO, "benchmark: the host peer died");
    while (q->rx_bytes < want) {
        bench_iter(fe, p.rep, 100);
        if (now_s() > until)
            bench_stalled("host->guest");
    }
    double t = now_s() - t0;
    double c1 = c0 >= 0 ? proc_cpu_s(bopt.backend_pid) : -1;
    bench_peer_done(fe, &p, &port, 1);
    *cpu_per_gb = c0 >= 0 && c1 >= 0 ? (c1 - c0) / ((double)bytes / 1e9) : -1;
    return (double)bytes / t / 1e6;
}

/* Round trips of one message: guest tx -> peer echoes -> guest rx; times in microseconds. */
static void bridge_echo(struct frontend *fe, unsigned port, unsigned count, double *lat)
{
    struct peer p = bench_peer(fe, PEER_ECHO, &port, 1, 0, 0);
    struct port *q = &fe->port[port];
    opt.tx_chunk = bopt.msg;
    double until = now_s() + opt.stall_timeout;
    unsigned warm = count / 10;
    for (unsigned i = 0; i < warm + count; i++) {
        uint64_t want = q->rx_bytes + bopt.msg;
        double t0 = now_s();
        q->tx_target = q->tx_posted + bopt.msg;
        fill_tx(fe, port);
        while (q->rx_bytes < want) {
            bench_iter(fe, -1, 100);
            if (now_s() > until)
                bench_stalled("echo");
        }
        if (i >= warm)
            lat[i - warm] = (now_s() - t0) * 1e6;
    }
    bench_peer_done(fe, &p, &port, 1);
}


/* ---- the measurement plan ---- */

static unsigned parse_list(const char *s, uint64_t *v, unsigned max, const char *what)
{
    unsigned n = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf)
        die_code(EXIT_USAGE, "%s list too long", what);
    strcpy(buf, s);
    char *save;
    for (char *t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        v[n++] = parse_size(t, what);
    return n;
}

static double pct(const double *sorted, unsigned n, double p)
{
    unsigned i = (unsigned)(p / 100.0 * (n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

static void latency_report(const char *target, double *all, unsigned n)
{
    qsort(all, n, sizeof *all, cmp_double);
    static const double ps[] = { 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100 };
    for (unsigned i = 0; i < sizeof ps / sizeof ps[0]; i++)
        out("LATPCT target=%s p=%g us=%.2f", target, ps[i], pct(all, n, ps[i]));
}

/* One throughput measurement, bridge and baseline alternating run by run. */
static void bench_stream(struct frontend *fe, const char *kind, uint64_t param, bool has_backend, const unsigned *ports, unsigned n,
                         uint64_t per_port, unsigned wchunk, unsigned rchunk, bool hg)
{
    double b[BENCH_MAX_RUNS], r[BENCH_MAX_RUNS], bc[BENCH_MAX_RUNS], rc[BENCH_MAX_RUNS];
    unsigned nb = 0, nr = 0;
    for (unsigned run = 1; run <= bopt.runs; run++) {
        double cpu;
        r[nr] = base_stream(per_port * n, wchunk, rchunk, &cpu);
        rc[nr] = cpu;
        out("BENCH kind=%s target=baseline param=%" PRIu64 " run=%u mbps=%.1f cpu_s_per_gb=%.3f", kind, param,
            run, r[nr], cpu);
        nr++;
        if (!has_backend)
            continue;
        b[nb] = hg ? bridge_hg(fe, ports[0], per_port, &cpu) : bridge_gh(fe, ports, n, per_port, wchunk, &cpu);
        bc[nb] = cpu;
        out("BENCH kind=%s target=bridge param=%" PRIu64 " run=%u mbps=%.1f cpu_s_per_gb=%.3f", kind, param, run,
            b[nb], cpu);
        nb++;
    }
    summary(kind, "baseline", param, "MB/s", r, nr);
    summary(kind, "baseline-cpu", param, "cpu_s_per_GB", rc, nr);
    summary(kind, "bridge", param, "MB/s", b, nb);
    if (bopt.backend_pid)
        summary(kind, "bridge-cpu", param, "cpu_s_per_GB", bc, nb);
}

static void bench_latency(struct frontend *fe, bool has_backend)
{
    unsigned n = bopt.echo_n;
    double *one = calloc(n, sizeof *one);
    double *ball = calloc((size_t)n * bopt.runs, sizeof *ball), *rall = calloc((size_t)n * bopt.runs, sizeof *rall);
    if (!one || !ball || !rall)
        die_code(EXIT_IO, "out of memory");
    double p50[2][BENCH_MAX_RUNS], p99[2][BENCH_MAX_RUNS], p999[2][BENCH_MAX_RUNS];
    unsigned nb = 0, nr = 0;
    for (unsigned run = 1; run <= bopt.runs; run++) {
        for (int t = 0; t < 2; t++) {
            if (t == 1 && !has_backend)
                break;
            if (t == 0)
                base_echo(n, one);
            else
                bridge_echo(fe, bopt.port, n, one);
            memcpy((t ? ball + (size_t)nb * n : rall + (size_t)nr * n), one, n * sizeof *one);
            qsort(one, n, sizeof *one, cmp_double);
            unsigned k = t ? nb++ : nr++;
            p50[t][k] = pct(one, n, 50);
            p99[t][k] = pct(one, n, 99);
            p999[t][k] = pct(one, n, 99.9);
            out("BENCH kind=echo target=%s param=%u run=%u p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f",
                t ? "bridge" : "baseline", bopt.msg, run, p50[t][k], p99[t][k], p999[t][k], one[n - 1]);
        }
    }
    summary("echo-p50", "baseline", bopt.msg, "us", p50[0], nr);
    summary("echo-p99", "baseline", bopt.msg, "us", p99[0], nr);
    summary("echo-p999", "baseline", bopt.msg, "us", p999[0], nr);
    summary("echo-p50", "bridge", bopt.msg, "us", p50[1], nb);
    summary("echo-p99", "bridge", bopt.msg, "us", p99[1], nb);
    summary("echo-p999", "bridge", bopt.msg, "us", p999[1], nb);
    latency_report("baseline", rall, nr * n);
    if (nb)
        latency_report("bridge", ball, nb * n);
    free(one);
    free(ball);
    free(rall);
}

/* Connects and starts the device like one_run, then waits until every port the backend adds is open. */
static void bench_connect(struct frontend *fe)
{
    fe->run = 1;
    vu_connect(&fe->vu, opt.socket, opt.connect_timeout);
    out("CONNECTED run=1 socket=%s", opt.socket);
    negotiate_connect(fe);
    start_device(fe, false);
    for (unsigned b = 0; b < opt.queue_size; b++)
        ctl_post_rx(fe, b);
    vq_publish(&fe->vq[CTL_RX]);
    ctl_send(fe, 0xffffffffu, C_DEVICE_READY, 1);
    vq_publish(&fe->vq[CTL_TX]);
    /* Ports arrive as PORT_ADD; the guest opens each generic one, as an application would. */
    double quiet_since = now_s(), until = now_s() + opt.stall_timeout;
    unsigned seen = 0;
    while (now_s() - quiet_since < 0.5) {
        bench_iter(fe, -1, 50);
        unsigned count = 0;
        for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
            struct port *p = &fe->port[id];
            if (p->exists && !p->console && !p->guest_open)
                set_guest_open(fe, id, true);
            count += p->exists && p->guest_open;
        }
        if (count != seen) {
            seen = count;
            quiet_since = now_s();
        }
        if (now_s() > until)
            bench_stalled("port discovery");
    }
    vq_publish(&fe->vq[CTL_TX]);
    out("READY ports=%u", seen);
}

int bench_main(struct frontend *fe)
{
    bool has = opt.socket != NULL;
    if (has && !bopt.host)
        die_code(EXIT_USAGE, "--bench with --socket needs --host unix:PATH or tcp:HOST:PORT");
    if (bopt.runs == 0 || bopt.runs > BENCH_MAX_RUNS)
        die_code(EXIT_USAGE, "--bench-runs must be 1..%u", BENCH_MAX_RUNS);
    if (bopt.msg == 0 || bopt.msg > PAGE_SIZE_GUEST)
        die_code(EXIT_USAGE, "--bench-msg must be 1..%u", PAGE_SIZE_GUEST);
    opt.bench = true;
    opt.verify = false;
    if (has) {
        bench_connect(fe);
        if (!port_ready_for_bench(&fe->port[bopt.port]) && !fe->port[bopt.port].exists)
            die_code(EXIT_USAGE, "benchmark port %u does not exist on this backend", bopt.port);
    }
    unsigned one = bopt.port;
    if (has) {
        /* Warm-up, not reported: a JIT-compiled backend is measured compiled, not while it compiles. */
        double cpu;
        bridge_gh(fe, &one, 1, bopt.bytes, TX_CHUNK_MAX, &cpu);
        bridge_hg(fe, one, bopt.bytes / 4, &cpu);
        out("WARMUP done");
    }
    if (bench_wants("gh"))
        bench_stream(fe, "gh", TX_CHUNK_MAX, has, &one, 1, bopt.bytes, TX_CHUNK_MAX, TX_CHUNK_MAX, false);
    if (bench_wants("hg"))
        bench_stream(fe, "hg", PAGE_SIZE_GUEST, has, &one, 1, bopt.bytes, 65536, PAGE_SIZE_GUEST, true);
    if (bench_wants("echo"))
        bench_latency(fe, has);
    if (bench_wants("sizes")) {
        uint64_t sz[16];
        unsigned ns = parse_list(bopt.sizes, sz, 16, "size");
        for (unsigned i = 0; i < ns; i++) {
            if (sz[i] == 0 || sz[i] > TX_CHUNK_MAX)
                die_code(EXIT_USAGE, "--bench-sizes: %" PRIu64 " is not 1..%u", sz[i], TX_CHUNK_MAX);
            /* Small buffers move fewer bytes per run so each run stays short. */
            uint64_t bytes = sz[i] * 16384 < bopt.bytes ? sz[i] * 16384 : bopt.bytes;
            bench_stream(fe, "size", sz[i], has, &one, 1, bytes, (unsigned)sz[i], (unsigned)sz[i], false);
        }
    }
    if (bench_wants("multi")) {
        uint64_t counts[16];
        unsigned nc = parse_list(bopt.ports, counts, 16, "port count");
        unsigned avail = 0, list[MAX_PORTS_ALLOC];
        /* Generic ports only: a console's guest writes a page at a time (hvc), and a backend may drop console
         * output its host side cannot take (QEMU's virtconsole does), so the peer would wait for bytes that
         * never come. */
        for (unsigned id = 1; id < MAX_PORTS_ALLOC; id++)
            if (fe->port[id].exists && fe->port[id].guest_open && !fe->port[id].console)
                list[avail++] = id;
        opt.depth_cap = bopt.multi_depth;
        for (unsigned i = 0; i < nc && has; i++) {
            unsigned n = (unsigned)counts[i];
            if (n > avail) {
                out("SKIP kind=multi param=%u reason=the backend has %u generic ports", n, avail);
                continue;
            }
            /* The same total for every port count, so each port count moves the same bytes. */
            uint64_t per = bopt.multi_bytes / n / TX_CHUNK_MAX * TX_CHUNK_MAX;
            if (per < TX_CHUNK_MAX)
                per = TX_CHUNK_MAX;
            bench_stream(fe, "multi", n, has, list, n, per, TX_CHUNK_MAX, TX_CHUNK_MAX, false);
        }
        opt.depth_cap = 0;
    }
    if (has) {
        stop_device(fe);
        close(fe->vu.sock);
    }
    out("DONE");
    return 0;
}
