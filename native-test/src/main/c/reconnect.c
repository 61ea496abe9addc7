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
static int reconnect_attempt(struct frontend *fe);

static void reconnect_device(struct frontend *fe)
{
    fe->reconnects++;
    out("BACKEND_GONE run=%u reconnects=%u", fe->run, fe->reconnects);
    double deadline = now_s() + opt.connect_timeout;
    for (;;) {
        if (fe->vu.sock >= 0)
            close(fe->vu.sock);
        fe->vu.sock = -1;
        /* An I/O failure (the new backend is not there yet, or goes away again) ends the attempt, not the
         * program: every step returns -1 up to here. */
        fe->vu.soft_fail = true;
        fe->vu.failed = false;
        int r = reconnect_attempt(fe);
        fe->vu.soft_fail = false;
        if (r == 0)
            break;
        warn("reconnect attempt failed: %s", fe->vu.error);
        if (now_s() > deadline)
            die_code(EXIT_IO, "no backend to reconnect to within %.0f s", opt.connect_timeout);
        usleep(20000);
    }
    out("RECONNECTED run=%u reconnects=%u", fe->run, fe->reconnects);
    fe->last_progress = now_s();
}

static int reconnect_attempt(struct frontend *fe)
{
    TRY(vu_connect(&fe->vu, opt.socket, opt.connect_timeout));
    TRY(negotiate_connect(fe));
    uint64_t acked = fe->features_acked;
    if ((fe->features_offered & acked) != acked)
        die("the new backend offers features 0x%" PRIx64 ", without bits 0x%" PRIx64 " acked before",
            fe->features_offered, acked & ~fe->features_offered);
    TRY(vu_plain(&fe->vu, VU_SET_FEATURES, &acked, sizeof acked));
    if (fe->status)
        TRY(add_status(fe, S_FEATURES_OK));
    if (opt.inflight)
        TRY(setup_inflight(fe));
    return start_rings(fe, START_RECONNECT);
}

void socket_event(struct frontend *fe)
{
    uint8_t b[VU_HDR_SIZE];
    ssize_t n = recv(fe->vu.sock, b, sizeof b, MSG_DONTWAIT);
    if ((n == 0 || (n < 0 && errno == ECONNRESET)) && opt.reconnect) {
        reconnect_device(fe);
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

