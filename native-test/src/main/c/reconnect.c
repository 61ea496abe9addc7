/* vsb-frontend: --reconnect. */
#include "frontend.h"

#include <sys/socket.h>

/*
 * --reconnect: the backend process went away (killed, crashed). As QEMU does for a backend it reconnects to, the
 * guest keeps running: its memory, rings and buffers stay as they are; the frontend connects again, negotiates
 * again, hands back the inflight buffer and restarts every ring at the used index the guest sees (the ring state
 * the dead backend had is lost: QEMU's virtio_queue_restore_last_avail_idx). What the old backend had taken but
 * not completed is in the avail ring still; the new backend finds it there.
 */
static int reconnect_attempt(void);

static void reconnect_device(void)
{
    g.reconnects++;
    out("BACKEND_GONE run=%u reconnects=%u", g.run, g.reconnects);
    double deadline = now_s() + opt.connect_timeout;
    for (;;) {
        if (g.vu.sock >= 0)
            close(g.vu.sock);
        g.vu.sock = -1;
        /* An I/O failure (the new backend is not there yet, or goes away again) ends the attempt, not the
         * program: every step returns -1 up to here. */
        g.vu.soft_fail = true;
        g.vu.failed = false;
        int r = reconnect_attempt();
        g.vu.soft_fail = false;
        if (r == 0)
            break;
        warn("reconnect attempt failed: %s", g.vu.error);
        if (now_s() > deadline)
            die_code(EXIT_IO, "no backend to reconnect to within %.0f s", opt.connect_timeout);
        usleep(20000);
    }
    out("RECONNECTED run=%u reconnects=%u", g.run, g.reconnects);
    g.last_progress = now_s();
}

static int reconnect_attempt(void)
{
    TRY(vu_connect(&g.vu, opt.socket, opt.connect_timeout));
    TRY(negotiate_connect());
    uint64_t acked = g.features_acked;
    if ((g.features_offered & acked) != acked)
        die("the new backend offers features 0x%" PRIx64 ", without bits 0x%" PRIx64 " acked before",
            g.features_offered, acked & ~g.features_offered);
    TRY(vu_plain(&g.vu, VU_SET_FEATURES, &acked, sizeof acked));
    if (g.status)
        TRY(add_status(S_FEATURES_OK));
    if (opt.inflight)
        TRY(setup_inflight());
    return start_rings(START_RECONNECT);
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

