/* vsb-frontend: the scenario runs: the poll loop, stdin commands, results, reboots, the state dump. */
#include "frontend.h"

static void send_garbage(struct frontend *fe, const char *kind)
{
    uint32_t flags = VU_FLAG_VERSION | (fe->vu.reply_ack ? VU_FLAG_NEED_REPLY : 0);
    uint32_t req;
    if (!strcmp(kind, "unknown")) {
        uint64_t v = 0;
        req = 0x7ffe;
        vu_send(&fe->vu, req, flags, &v, sizeof v, NULL, 0);
    } else if (!strcmp(kind, "badsize")) {
        uint32_t v = 0; /* SET_VRING_NUM wants 8 bytes (index, num) */
        req = VU_SET_VRING_NUM;
        vu_send(&fe->vu, req, flags, &v, sizeof v, NULL, 0);
    } else if (!strcmp(kind, "badindex")) {
        uint32_t s[2] = { 1000, 64 };
        req = VU_SET_VRING_NUM;
        vu_send(&fe->vu, req, flags, s, sizeof s, NULL, 0);
    } else {
        die_code(EXIT_USAGE, "unknown garbage kind '%s' (unknown, badsize, badindex)", kind);
    }
    if (!fe->vu.reply_ack) {
        /* No acks: GET_FEATURES is the barrier (as QEMU's enforce_reply does). */
        uint64_t f;
        vu_get_u64(&fe->vu, VU_GET_FEATURES, &f);
        out("GARBAGE kind=%s ack=none features=0x%" PRIx64, kind, f);
        return;
    }
    uint64_t ack;
    vu_reply(&fe->vu, req, &ack, sizeof ack);
    out("GARBAGE kind=%s ack=%" PRIu64, kind, ack);
}

static bool all_listed_added(struct frontend *fe)
{
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
        if (opt.spec[id].listed && !fe->port[id].exists)
            return false;
    return true;
}

static bool targets_met(struct frontend *fe)
{
    if (!all_listed_added(fe) || fe->ctl_npending || fe->vq[CTL_TX].live)
        return false;
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &fe->port[id];
        if (!opt.spec[id].listed && !p->tx_target && !p->rx_target)
            continue;
        if (p->tx_done < p->tx_target || p->rx_bytes < p->rx_target)
            return false;
    }
    return true;
}

static bool work_pending(struct frontend *fe)
{
    return !targets_met(fe);
}

static void print_results(struct frontend *fe)
{
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &fe->port[id];
        if (!opt.spec[id].listed && !p->exists && !p->tx_done && !p->rx_bytes)
            continue;
        out("RESULT run=%u port=%u name=%s tx_bytes=%" PRIu64 " tx_sum=%016" PRIx64 " rx_bytes=%" PRIu64
            " rx_sum=%016" PRIx64 " rx_discarded=%" PRIu64 " bad_desc=%s", fe->run, id,
            p->named ? p->name : "-", p->tx_done, p->tx_sum, p->rx_bytes, p->rx_sum, p->rx_discarded,
            p->bad_state == 0 ? "none" : p->bad_state == 3 ? "returned" : "pending");
        uint64_t tb = p->tx_done - p->run_tx0, rb = p->rx_bytes - p->run_rx0;
        double tt = p->t_tx_last - p->t_tx_first, rt = p->t_rx_last - p->t_rx_first;
        out("THROUGHPUT run=%u port=%u tx_mbps=%.1f rx_mbps=%.1f", fe->run, id,
            tb && tt > 0 ? (double)tb / tt / 1e6 : 0.0, rb && rt > 0 ? (double)rb / rt / 1e6 : 0.0);
        if (opt.family == FAM_LOOPBACK)
            out("CROSS run=%u port=%u rx_buffers=%" PRIu64 " tx_buffers=%" PRIu64, fe->run, id, p->rx_cross,
                p->tx_cross);
    }
}

/*
 * A guest reboot, as QEMU runs it: the rings stop (GET_VRING_BASE for each), the device is reset (SET_STATUS 0,
 * RESET_DEVICE or RESET_OWNER), then the new kernel's driver probes from scratch: config, features, memory,
 * empty rings, DEVICE_READY, PORT_READY for every port it is given. Ports the old guest had open are closed until
 * it opens them again (the scenario's 'open' ports are not reopened by themselves). Buffers posted but not used
 * before the reset are lost, as a write() the reboot interrupted; reboot when the ports are idle to keep the
 * pattern streams of both ends in step.
 */
static void reboot_guest(struct frontend *fe)
{
    out("REBOOT run=%u", fe->run);
    stop_rings(fe);
    const char *how = reset_device(fe);
    for (unsigned i = 0; i < fe->needed_vqs; i++) {
        struct vq *q = &fe->vq[i];
        uint64_t v;
        if (read(q->call_fd, &v, sizeof v) == sizeof v) /* a call of the old rings */
            q->calls++;
        memset(gpa_ptr(&fe->mem, q->desc_gpa), 0, 16ull * q->num);
        memset(gpa_ptr(&fe->mem, q->avail_gpa), 0, opt.packed ? 4 : 6ull + 2ull * q->num);
        memset(gpa_ptr(&fe->mem, q->used_gpa), 0, opt.packed ? 4 : 6ull + 8ull * q->num);
    }
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &fe->port[id];
        p->exists = p->console = p->guest_open = p->host_open = p->named = p->ready_sent = p->removed = false;
        p->tx_posted = p->tx_done;
        if (p->bad_state == 2)
            p->bad_state = 0;
    }
    fe->ready_printed = false;
    start_device(fe, true);
    driver_ready(fe);
    fe->stopping = false;
    fe->last_progress = now_s();
    out("REBOOTED run=%u reset=%s", fe->run, how);
}

void cmd_port(const char *arg, unsigned *id)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 10);
    if (end == arg || v >= MAX_PORTS_ALLOC)
        die_code(EXIT_USAGE, "bad port number '%s' (0..%u)", arg, MAX_PORTS_ALLOC - 1);
    *id = (unsigned)v;
}

static void end_run(struct frontend *fe, bool clean);

static void handle_command(struct frontend *fe, char *line)
{
    char *argv[4] = { 0 };
    int argc = 0;
    for (char *t = strtok(line, " \t\r"); t && argc < 4; t = strtok(NULL, " \t\r"))
        argv[argc++] = t;
    if (argc == 0)
        return;
    unsigned id = 0;
    if (!strcmp(argv[0], "open") && argc == 2) {
        cmd_port(argv[1], &id);
        if (!fe->port[id].exists)
            warn("open: port %u does not exist", id);
        else if (fe->port[id].console)
            warn("open: port %u is a console (ENXIO)", id);
        else if (!fe->port[id].guest_open)
            set_guest_open(fe, id, true);
    } else if (!strcmp(argv[0], "close") && argc == 2) {
        cmd_port(argv[1], &id);
        if (fe->port[id].exists && fe->port[id].guest_open && !fe->port[id].console)
            set_guest_open(fe, id, false);
    } else if (!strcmp(argv[0], "tx") && argc == 3) {
        cmd_port(argv[1], &id);
        fe->port[id].tx_target += parse_size(argv[2], "byte count");
    } else if (!strcmp(argv[0], "rx") && argc == 3) {
        cmd_port(argv[1], &id);
        fe->port[id].rx_target += parse_size(argv[2], "byte count");
    } else if (!strcmp(argv[0], "wait")) {
        fe->want_idle = true;
    } else if (!strcmp(argv[0], "garbage") && argc == 2) {
        send_garbage(fe, argv[1]);
    } else if (!strcmp(argv[0], "baddesc") && argc == 3) {
        cmd_port(argv[1], &id);
        enum bad_kind k = BAD_NONE;
        for (int i = 1; i <= BAD_INDIRECT; i++)
            if (!strcmp(argv[2], bad_names[i]))
                k = (enum bad_kind)i;
        if (k == BAD_NONE)
            die_code(EXIT_USAGE, "bad descriptor kind '%s'", argv[2]);
        if (opt.packed && (k == BAD_NEXT || k == BAD_LOOP))
            die_code(EXIT_USAGE, "baddesc %s needs a split ring (a packed descriptor has no next field)", argv[2]);
        opt.spec[id].bad = k;
        fe->port[id].bad_state = 1;
    } else if (!strcmp(argv[0], "emerg") && (argc == 2 || argc == 3)) {
        if (argc == 3)
            cmd_port(argv[2], &id);
        emerg_write(fe, id, parse_size(argv[1], "byte count"));
    } else if (!strcmp(argv[0], "reboot") && argc == 1) {
        reboot_guest(fe);
    } else if (!strcmp(argv[0], "status")) {
        print_results(fe);
        out("STATUS");
    } else if (!strcmp(argv[0], "disconnect")) {
        end_run(fe, false);
    } else if (!strcmp(argv[0], "quit")) {
        end_run(fe, true);
    } else {
        warn("unknown command '%s'", argv[0]);
    }
}

static void read_stdin(struct frontend *fe)
{
    if (fe->in_len == sizeof fe->in_buf)
        fe->in_len = 0;
    ssize_t n = read(0, fe->in_buf + fe->in_len, sizeof fe->in_buf - fe->in_len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        fe->stdin_open = false;
        if (!fe->ended)
            end_run(fe, true);
        return;
    }
    fe->in_len += (size_t)n;
    char *nl;
    while (!fe->ended && (nl = memchr(fe->in_buf, '\n', fe->in_len))) {
        *nl = 0;
        char line[sizeof fe->in_buf];
        strcpy(line, fe->in_buf);
        size_t used = (size_t)(nl - fe->in_buf) + 1;
        memmove(fe->in_buf, nl + 1, fe->in_len - used);
        fe->in_len -= used;
        handle_command(fe, line);
    }
}

static void close_run_fds(struct frontend *fe)
{
    for (unsigned i = 0; i < fe->num_vqs; i++)
        vq_close(&fe->vq[i]);
    mem_unmap(&fe->mem);
    if (fe->backend_fd >= 0) {
        close(fe->backend_fd);
        fe->backend_fd = -1;
    }
    if (fe->inflight_fd >= 0) { /* the next run is a new guest (a reset): its backend starts a new buffer */
        close(fe->inflight_fd);
        fe->inflight_fd = -1;
    }
}

static void end_run(struct frontend *fe, bool clean)
{
    if (fe->ended)
        return;
    if (clean) {
        if (opt.close_at_end) {
            for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
                if (fe->port[id].exists && fe->port[id].guest_open && !fe->port[id].console)
                    set_guest_open(fe, id, false);
            /* Wait, like the driver, until the backend used those control messages. */
            double until = now_s() + opt.reply_timeout;
            vq_publish(&fe->vq[CTL_TX]);
            while ((fe->ctl_npending || fe->vq[CTL_TX].live) && now_s() < until) {
                struct pollfd p = { .fd = fe->vq[CTL_TX].call_fd, .events = POLLIN };
                if (poll(&p, 1, 100) > 0) {
                    uint64_t v;
                    if (read(p.fd, &v, sizeof v) == sizeof v)
                        fe->vq[CTL_TX].calls++;
                }
                guest_drain(fe, &fe->vq[CTL_TX]);
                ctl_flush_pending(fe);
                vq_publish(&fe->vq[CTL_TX]);
            }
            if (fe->ctl_npending || fe->vq[CTL_TX].live)
                die_code(EXIT_STALL, "the backend did not use the final PORT_OPEN(0) messages");
        }
        stop_device(fe);
    } else {
        out("DISCONNECT run=%u", fe->run);
    }
    close(fe->vu.sock);
    fe->vu.sock = -1;
    fe->ended = true;
    print_results(fe);
    out("RUN %u done", fe->run);
}

void diag_dump(void *ctx)
{
    struct frontend *fe = ctx;
    if (!fe->needed_vqs || !fe->mem.base)
        return;
    fprintf(stderr, "vsb-frontend: state at failure (run %u):\n", fe->run);
    for (unsigned i = 0; i < fe->needed_vqs; i++) {
        struct vq *q = &fe->vq[i];
        if (!q->setup)
            continue;
        uint64_t masked = 0;
        if (read(q->masked_fd, &masked, sizeof masked) != sizeof masked)
            masked = 0;
        vq_diag(q, i, masked);
    }
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &fe->port[id];
        if (!p->exists && !opt.spec[id].listed)
            continue;
        fprintf(stderr, "  port %u: exists %d console %d guest_open %d host_open %d tx %" PRIu64 "/%" PRIu64
                " (posted %" PRIu64 ") rx %" PRIu64 "/%" PRIu64 " discarded %" PRIu64 "\n",
                id, p->exists, p->console, p->guest_open, p->host_open, p->tx_done, p->tx_target,
                p->tx_posted, p->rx_bytes, p->rx_target, p->rx_discarded);
    }
    fprintf(stderr, "  control: %u messages wait for a transmitq slot\n", fe->ctl_npending);
}

static void run_loop(struct frontend *fe)
{
    static struct pollfd pf[3 + 3 * MAX_QUEUES];
    fe->last_progress = now_s();
    bool garbage_sent = false;
    while (!fe->ended) {
        unsigned n = 0;
        pf[n++] = (struct pollfd){ .fd = fe->vu.sock, .events = POLLIN };
        int stdin_slot = -1;
        if (opt.use_stdin && fe->stdin_open) {
            stdin_slot = (int)n;
            pf[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
        }
        int backend_slot = -1;
        if (fe->backend_fd >= 0) {
            backend_slot = (int)n;
            pf[n++] = (struct pollfd){ .fd = fe->backend_fd, .events = POLLIN };
        }
        unsigned qbase = n;
        /* The loopback adapter unmasks without waiting for an ack: a call the backend made on the masked notifier
         * meanwhile is pending and goes to the guest (QEMU's guest_notifier_pending on unmask). */
        for (unsigned i = 0; i < fe->needed_vqs; i++) {
            pf[n++] = (struct pollfd){ .fd = fe->vq[i].call_fd, .events = POLLIN };
            pf[n++] = (struct pollfd){ .fd = fe->vq[i].err_fd, .events = POLLIN };
            pf[n++] = (struct pollfd){ .fd = opt.family == FAM_LOOPBACK ? fe->vq[i].masked_fd : -1, .events = POLLIN };
        }
        int r = poll(pf, n, 200);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die_code(EXIT_IO, "poll: %s", strerror(errno));
        }
        if (pf[0].revents)
            socket_event(fe);
        /* (A reconnect in socket_event may have replaced the channel: what was polled was the old one.) */
        if (backend_slot >= 0 && pf[backend_slot].revents && fe->backend_fd == pf[backend_slot].fd)
            backend_event(fe);
        for (unsigned i = 0; i < fe->needed_vqs; i++) {
            struct vq *q = &fe->vq[i];
            uint64_t v;
            if (pf[qbase + 3 * i + 1].revents && read(q->err_fd, &v, sizeof v) == sizeof v) {
                q->errs++;
                warn("the backend signalled the error eventfd of queue %u", i);
                out("EVENT vring_err queue=%u", i);
            }
            bool call = pf[qbase + 3 * i].revents && read(q->call_fd, &v, sizeof v) == sizeof v;
            call |= pf[qbase + 3 * i + 2].revents && read(q->masked_fd, &v, sizeof v) == sizeof v;
            if (call)
                q->calls++;
            if (pf[qbase + 3 * i].revents || pf[qbase + 3 * i + 2].revents)
                guest_drain(fe, q);
        }
        ctl_flush_pending(fe);
        if (!garbage_sent) {
            garbage_sent = true;
            for (unsigned k = 0; k < opt.ngarbage; k++)
                send_garbage(fe, opt.garbage[k]);
        }
        for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
            if (fe->port[id].exists)
                fill_tx(fe, id);
        for (unsigned i = 0; i < fe->needed_vqs; i++)
            vq_publish(&fe->vq[i]);
        if (!fe->ready_printed && all_listed_added(fe)) {
            fe->ready_printed = true;
            /* Generic ports the scenario opens: like an application calling open() once the
             * device node appears (after the first boot only: see reboot_guest). */
            for (unsigned id = 0; id < MAX_PORTS_ALLOC && fe->boots == 1; id++)
                if (opt.spec[id].listed && opt.spec[id].open && !fe->port[id].console && !fe->port[id].guest_open)
                    set_guest_open(fe, id, true);
            vq_publish(&fe->vq[CTL_TX]);
            out("READY");
        }
        if (stdin_slot >= 0 && pf[stdin_slot].revents)
            read_stdin(fe);
        if (fe->ended)
            break;
        uint64_t run_tx = 0;
        for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++)
            run_tx += fe->port[id].tx_done - fe->port[id].run_tx0;
        if (opt.disconnect_after && run_tx >= opt.disconnect_after) {
            end_run(fe, false);
            break;
        }
        bool met = targets_met(fe);
        if (met && fe->want_idle) {
            fe->want_idle = false;
            out("IDLE");
        }
        if (met && !opt.use_stdin && fe->ready_printed) {
            end_run(fe, true);
            break;
        }
        if (!met && opt.stall_timeout > 0 && now_s() - fe->last_progress > opt.stall_timeout)
            die_code(EXIT_STALL, "nothing moved for %.0f s while work is pending", opt.stall_timeout);
        if (met || !work_pending(fe))
            fe->last_progress = now_s();
    }
}

void one_run(struct frontend *fe, unsigned run)
{
    fe->run = run;
    fe->ended = fe->stopping = fe->ready_printed = fe->want_idle = false;
    fe->ctl_npending = 0;
    fe->features_acked = fe->proto_acked = fe->proto_offered = fe->queue_num = 0;
    fe->needed_vqs = 0;
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port *p = &fe->port[id];
        struct port_spec *s = &opt.spec[id];
        p->exists = p->console = p->guest_open = p->host_open = p->named = p->ready_sent = false;
        p->run_tx0 = p->tx_done;
        p->run_rx0 = p->rx_bytes;
        p->tx_posted = p->tx_done; /* a disconnect loses what was posted but never used */
        p->tx_target = p->tx_done + s->tx;
        p->rx_target = p->rx_bytes + s->rx;
        p->t_tx_first = p->t_tx_last = p->t_rx_first = p->t_rx_last = 0;
        p->bad_state = s->bad != BAD_NONE ? 1 : 0;
    }
    fe->boots = 0;
    fe->have_config = false;
    vu_connect(&fe->vu, opt.socket, opt.connect_timeout);
    out("CONNECTED run=%u socket=%s", run, opt.socket);
    negotiate_connect(fe);
    start_device(fe, false);
    driver_ready(fe);
    run_loop(fe);
    close_run_fds(fe);
}

/* ------------------------------------------------------------------------------------------ */
/* benchmark mode                                                                              */
/*
 * --bench runs measurements through the backend and, in the same process and the same run,
 * the raw baselines without it. The host side of each port is played by a forked peer process
 * (discard, source or echo) connected to the backend's host endpoint for that port; the guest
 * side is this process, interrupt driven as in the scenarios. Nothing here asserts on time:
 * figures are printed, one line each, and summarised as median, min and max over the runs.
 */
