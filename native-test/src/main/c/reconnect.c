/*
 * vsb-frontend: --reconnect, and the one place that uses setjmp/longjmp.
 *
 * While a reconnect attempt runs, an I/O failure (the new backend is not there yet, or goes away again) ends the
 * attempt, not the program: die_code(EXIT_IO, ...) anywhere below reconnect_attempt() comes to on_io_failure(),
 * which jumps back to the loop in reconnect_device(). Everything in between (the vhost-user client, negotiation,
 * the ring start) holds no resource that the jump would leak beyond what the next attempt replaces: the socket is
 * closed and reopened by the loop, eventfds and guest memory are kept for the guest.
 */
#include "frontend.h"

#include <setjmp.h>
#include <sys/socket.h>

static jmp_buf reconnect_env;
static volatile bool reconnect_armed;

static void on_io_failure(const char *fmt, va_list ap)
{
    if (!reconnect_armed)
        return;
    reconnect_armed = false;
    fprintf(stderr, "vsb-frontend: warning: reconnect attempt failed: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    longjmp(reconnect_env, 1);
}

/*
 * --reconnect: the backend process went away (killed, crashed). As QEMU does for a backend it reconnects to, the
 * guest keeps running: its memory, rings and buffers stay as they are; the frontend connects again, negotiates
 * again, hands back the inflight buffer and restarts every ring at the used index the guest sees (the ring state
 * the dead backend had is lost: QEMU's virtio_queue_restore_last_avail_idx). What the old backend had taken but
 * not completed is in the avail ring still; the new backend finds it there.
 */
static void reconnect_attempt(void);

static void reconnect_device(void)
{
    g.reconnects++;
    out("BACKEND_GONE run=%u reconnects=%u", g.run, g.reconnects);
    static double deadline; /* static: kept across longjmp */
    deadline = now_s() + opt.connect_timeout;
    set_io_failure_handler(on_io_failure);
    for (;;) {
        if (g.vu.sock >= 0)
            close(g.vu.sock);
        g.vu.sock = -1;
        if (setjmp(reconnect_env) == 0) {
            reconnect_armed = true;
            reconnect_attempt();
            reconnect_armed = false;
            break;
        }
        if (now_s() > deadline)
            die_code(EXIT_IO, "no backend to reconnect to within %.0f s", opt.connect_timeout);
        usleep(20000);
    }
    out("RECONNECTED run=%u reconnects=%u", g.run, g.reconnects);
    g.last_progress = now_s();
}

static void reconnect_attempt(void)
{
    vu_connect(&g.vu, opt.socket, opt.connect_timeout);
    negotiate_connect();
    uint64_t acked = g.features_acked;
    if ((g.features_offered & acked) != acked)
        die("the new backend offers features 0x%" PRIx64 ", without bits 0x%" PRIx64 " acked before",
            g.features_offered, acked & ~g.features_offered);
    vu_plain(&g.vu, VU_SET_FEATURES, &acked, sizeof acked);
    if (g.status)
        add_status(S_FEATURES_OK);
    if (opt.inflight)
        setup_inflight();
    start_rings(START_RECONNECT);
}

void socket_event(void)
{
    uint8_t b[VU_HDR_SIZE];
    ssize_t n = recv(g.vu.sock, b, sizeof b, MSG_DONTWAIT);
    if ((n == 0 || (n < 0 && errno == ECONNRESET)) && opt.reconnect) {
        reconnect_device();
        return;
    }
    if (n == 0)
        die_code(EXIT_IO, "the backend closed the vhost-user connection");
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        die_code(EXIT_IO, "vhost-user connection: %s", strerror(errno));
    }
    uint32_t r = 0;
    memcpy(&r, b, n >= 4 ? 4 : (size_t)n);
    die("the backend sent an unsolicited message (request %u) on the vhost-user socket", r);
}

