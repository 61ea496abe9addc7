/* vsb-frontend: --bench, the host side: the peer process on the backend's host endpoints, and the raw baselines
 * without any backend. */
#include "bench.h"

#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

/* user+sys seconds of a process from /proc/PID/stat (fields 14 and 15). */
double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double rusage_s(int who)
{
    struct rusage r;
    getrusage(who, &r);
    return (double)r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + (double)r.ru_stime.tv_sec +
           r.ru_stime.tv_usec * 1e-6;
}

/* ---- the host peer ---- */

static int endpoint_connect(unsigned port)
{
    const char *h = bopt.host;
    double deadline = now_s() + opt.connect_timeout;
    for (;;) {
        int s = -1, e = 0;
        if (!strncmp(h, "unix:", 5)) {
            struct sockaddr_un a;
            memset(&a, 0, sizeof a);
            a.sun_family = AF_UNIX;
            char path[sizeof a.sun_path + 16];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(path, sizeof path, h + 5, port);
#pragma GCC diagnostic pop
            if (strlen(path) >= sizeof a.sun_path)
                die_code(EXIT_USAGE, "host socket path too long: %s", path);
            strcpy(a.sun_path, path);
            s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0)
                return s;
            e = errno;
        } else if (!strncmp(h, "tcp:", 4)) {
            const char *colon = strrchr(h + 4, ':');
            if (!colon)
                die_code(EXIT_USAGE, "--host tcp:HOST:PORT expected, got %s", h);
            char host[64];
            size_t hl = (size_t)(colon - (h + 4));
            if (hl >= sizeof host)
                die_code(EXIT_USAGE, "--host: host name too long");
            memcpy(host, h + 4, hl);
            host[hl] = 0;
            struct sockaddr_in a;
            memset(&a, 0, sizeof a);
            a.sin_family = AF_INET;
            a.sin_port = htons((uint16_t)(atoi(colon + 1) + (int)port - (int)bopt.port));
            if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
                die_code(EXIT_USAGE, "--host: '%s' is not an IPv4 address", host);
            s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
                int one = 1;
                setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                return s;
            }
            e = errno;
        } else {
            die_code(EXIT_USAGE, "--host must be unix:PATH or tcp:HOST:PORT, got %s", h);
        }
        if (s >= 0)
            close(s);
        if (now_s() > deadline)
            die_code(EXIT_IO, "peer: cannot connect to the host endpoint of port %u (%s): %s", port, h,
                     strerror(e));
        usleep(20000);
    }
}

static void write_all(int fd, const void *b, size_t n)
{
    const uint8_t *p = b;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            _exit(EXIT_IO);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* The host side: connects to every port's endpoint, says so on rep, then plays its mode until killed. */
static void peer_main(enum peer_mode mode, const unsigned *ports, unsigned n, uint64_t per_port, unsigned chunk,
                      int go, int rep)
{
    static uint8_t buf[BENCH_PEER_BUF];
    int fds[MAX_PORTS_ALLOC];
    for (unsigned i = 0; i < n; i++)
        fds[i] = endpoint_connect(ports[i]);
    uint64_t v = PEER_CONNECTED;
    write_all(rep, &v, sizeof v);
    if (mode == PEER_ECHO) {
        for (;;) {
            ssize_t r = read(fds[0], buf, sizeof buf);
            if (r <= 0)
                _exit(r == 0 ? 0 : EXIT_IO);
            write_all(fds[0], buf, (size_t)r);
        }
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    uint64_t sent[MAX_PORTS_ALLOC] = { 0 }, total = 0, want = per_port * n;
    if (mode == PEER_SOURCE) {
        char c;
        if (read(go, &c, 1) != 1)
            _exit(0);
        memset(buf, 0x5a, sizeof buf);
    }
    for (unsigned i = 0; i < n; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        struct epoll_event e = { .events = mode == PEER_SOURCE ? EPOLLOUT | EPOLLIN : EPOLLIN, .data.u32 = i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
    }
    bool reported = false;
    for (;;) {
        struct epoll_event ev[64];
        int k = epoll_wait(ep, ev, 64, -1);
        for (int j = 0; j < k; j++) {
            unsigned i = ev[j].data.u32;
            if (ev[j].events & EPOLLIN) {
                ssize_t r = read(fds[i], buf, sizeof buf);
                if (r == 0) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                    continue;
                }
                if (r > 0 && mode == PEER_DISCARD)
                    total += (uint64_t)r;
            }
            if (mode == PEER_SOURCE && (ev[j].events & EPOLLOUT) && sent[i] < per_port) {
                uint64_t left = per_port - sent[i];
                ssize_t w = write(fds[i], buf, left < chunk ? (size_t)left : chunk);
                if (w > 0) {
                    sent[i] += (uint64_t)w;
                    total += (uint64_t)w;
                }
                if (sent[i] == per_port) {
                    struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };
                    epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &e);
                }
            }
        }
        if (!reported && total >= want) {
            reported = true;
            write_all(rep, &total, sizeof total);
        }
    }
}


struct peer peer_start(enum peer_mode mode, const unsigned *ports, unsigned n, uint64_t per_port, unsigned chunk,
                       int vhost_fd)
{
    int go[2], rep[2];
    if (pipe2(go, O_CLOEXEC) || pipe2(rep, O_CLOEXEC))
        die_code(EXIT_IO, "pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die_code(EXIT_IO, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(vhost_fd);
        close(go[1]);
        close(rep[0]);
        peer_main(mode, ports, n, per_port, chunk, go[0], rep[1]);
        _exit(0);
    }
    close(go[0]);
    close(rep[1]);
    return (struct peer){ pid, go[1], rep[0] };
}

void peer_stop(struct peer *p)
{
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    close(p->go);
    close(p->rep);
}

/* ---- the raw baselines ---- */

double base_stream(uint64_t bytes, unsigned wchunk, unsigned rchunk, double *cpu_per_gb)
{
    static uint8_t buf[BENCH_PEER_BUF];
    int sp[2], go[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) || pipe2(go, O_CLOEXEC))
        die_code(EXIT_IO, "socketpair: %s", strerror(errno));
    fflush(stdout);
    double self0 = rusage_s(RUSAGE_SELF), kids0 = rusage_s(RUSAGE_CHILDREN);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(sp[0]);
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(0);
        memset(buf, 0x5a, wchunk);
        for (uint64_t sent = 0; sent < bytes;) {
            uint64_t left = bytes - sent;
            size_t n = left < wchunk ? (size_t)left : wchunk;
            write_all(sp[1], buf, n);
            sent += n;
        }
        _exit(0);
    }
    close(sp[1]);
    close(go[0]);
    double t0 = now_s();
    if (write(go[1], "g", 1) != 1)
        die_code(EXIT_IO, "baseline writer died");
    uint64_t got = 0;
    while (got < bytes) {
        ssize_t r = read(sp[0], buf, rchunk);
        if (r <= 0)
            die_code(EXIT_IO, "baseline stream ended after %" PRIu64 " bytes", got);
        got += (uint64_t)r;
    }
    double t = now_s() - t0;
    waitpid(pid, NULL, 0);
    close(sp[0]);
    close(go[1]);
    double cpu = rusage_s(RUSAGE_SELF) - self0 + rusage_s(RUSAGE_CHILDREN) - kids0;
    *cpu_per_gb = cpu / ((double)bytes / 1e9);
    return (double)bytes / t / 1e6;
}

/* The same echo over bare hops: guest --eventfd--> relay --socket--> peer --socket--> relay --eventfd--> guest,
 * three processes, as the bridge path is guest, backend and host peer. */
void base_echo(unsigned count, double *lat)
{
    static uint8_t buf[65536];
    int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC), sp[2];
    if (kick < 0 || call < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
        die_code(EXIT_IO, "baseline echo set-up: %s", strerror(errno));
    fflush(stdout);
    pid_t echo = fork();
    if (echo == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            ssize_t r = read(sp[1], buf, sizeof buf);
            if (r <= 0)
                _exit(0);
            write_all(sp[1], buf, (size_t)r);
        }
    }
    close(sp[1]);
    pid_t relay = fork();
    if (relay == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        unsigned have = 0;
        for (;;) {
            struct pollfd p[2] = { { kick, POLLIN, 0 }, { sp[0], POLLIN, 0 } };
            if (poll(p, 2, -1) < 0)
                continue;
            uint64_t v;
            if (p[0].revents) {
                if (read(kick, &v, sizeof v) != sizeof v)
                    _exit(EXIT_IO);
                memset(buf, 0x5a, bopt.msg);
                write_all(sp[0], buf, bopt.msg);
            }
            if (p[1].revents) {
                ssize_t r = read(sp[0], buf, sizeof buf);
                if (r <= 0)
                    _exit(0);
                have += (unsigned)r;
                if (have >= bopt.msg) {
                    have -= bopt.msg;
                    v = 1;
                    write_all(call, &v, sizeof v);
                }
            }
        }
    }
    unsigned warm = count / 10;
    for (unsigned i = 0; i < warm + count; i++) {
        double t0 = now_s();
        uint64_t v = 1;
        write_all(kick, &v, sizeof v);
        struct pollfd p = { call, POLLIN, 0 };
        if (poll(&p, 1, (int)(opt.stall_timeout * 1000)) != 1 || read(call, &v, sizeof v) != sizeof v)
            die_code(EXIT_STALL, "baseline echo stalled");
        if (i >= warm)
            lat[i - warm] = (now_s() - t0) * 1e6;
    }
    kill(relay, SIGKILL);
    kill(echo, SIGKILL);
    waitpid(relay, NULL, 0);
    waitpid(echo, NULL, 0);
    close(sp[0]);
    close(kick);
    close(call);
}
