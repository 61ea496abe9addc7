/* vsb-frontend: the command line. */
#include "frontend.h"

#include <signal.h>

const char *const bad_names[7] = { "none", "addr", "len", "wrap", "next", "loop", "indirect" };

struct options opt = {
    .queue_size = 64, .tx_segs = 1, .tx_chunk = TX_CHUNK_MAX, .runs = 1, .verify = true,
    .feature_mask = ~0ull, .proto_mask = ~0ull, .connect_timeout = 20, .stall_timeout = 30,
    .reply_timeout = 10,
};

/* The one frontend of this process: everything below main() gets it as a parameter. */
static struct frontend g;

static void usage(FILE *f)
{
    fprintf(f,
"usage: vsb-frontend --socket PATH [options]\n"
"\n"
"A vhost-user frontend that behaves like QEMU 10.2 (vhost-user-test-device-pci, virtio-id=3)\n"
"plus the Linux 6.1 virtio_console driver, for testing a virtio-console backend.\n"
"\n"
"Scenario:\n"
"  --socket PATH            vhost-user socket of the backend (connect retried for --connect-timeout)\n"
"  --port N[:tx=B][:rx=B][:open][:seed=S][:bad=KIND]\n"
"                           port N (repeatable): the guest writes B bytes (tx, guest->host) and\n"
"                           expects B bytes (rx, host->guest) per run; 'open' opens a generic port\n"
"                           (consoles open on CONSOLE_PORT by themselves); seed replaces the\n"
"                           pattern base; bad=KIND posts one bad descriptor on its transmitq\n"
"                           (addr, len, wrap, next, loop, indirect) instead of data\n"
"  --close                  close opened generic ports (PORT_OPEN 0) before the clean stop\n"
"  --runs N                 connect, run, stop, disconnect N times in this process (default 1)\n"
"  --disconnect-after B     drop the connection abruptly once B bytes of tx were used in a run\n"
"  --garbage KIND           after the rings start, send a bad message and expect an error ack:\n"
"                           unknown (request 0x7ffe), badsize (SET_VRING_NUM with 4 bytes),\n"
"                           badindex (SET_VRING_NUM for queue 1000); repeatable\n"
"  --stdin                  take commands on stdin; the run ends on 'quit' or end of input:\n"
"                             open N | close N | tx N B | rx N B | wait (prints IDLE when every\n"
"                             target is met) | garbage KIND | baddesc N KIND | status |\n"
"                             emerg B [N] (the next B bytes of port N's guest->host pattern, default\n"
"                             port 0, one SET_CONFIG of emerg_wr each; needs --emerg-write) |\n"
"                             reboot (stop the rings, reset the device, probe again from scratch:\n"
"                             features, memory, empty rings, DEVICE_READY; ports closed until opened\n"
"                             again; reboot while idle, unused buffers are lost) |\n"
"                             disconnect (abrupt) | quit (clean stop)\n"
"Frontend family:\n"
"  --family qemu|chv|loopback\n"
"                           qemu (default): QEMU 10.2's order, NEED_REPLY on every request without a\n"
"                           reply of its own, ADD_MEM_REG with mem slots, STATUS, BACKEND_REQ;\n"
"                           chv: cloud-hypervisor / rust-vmm: per queue NUM, ADDR, BASE, CALL, KICK,\n"
"                           ENABLE, NEED_REPLY only on SET_MEM_TABLE, no STATUS, reset by RESET_OWNER;\n"
"                           loopback: the virtio-loopback adapter: GET_CONFIG at realize, request 39\n"
"                           with an fd when STATUS is not negotiated (LOOPBACK_FD line), one sparse\n"
"                           memfd cut into 4..16 regions of ~1 GiB at unaligned mmap_offsets with\n"
"                           userspace_addr == guest_phys_addr (REGION lines), each port's buffers\n"
"                           across region boundaries (CROSS lines), no stop at the end\n"
"Device and driver:\n"
"  --queue-size N           ring size of every queue (default 64, as vhost-user-test-device-pci)\n"
"  --num-queues N           num_vqs (default: the backend's GET_QUEUE_NUM answer)\n"
"  --tx-chunk B             largest tx buffer of a generic port (default and maximum 32768)\n"
"  --tx-depth N             tx buffers in flight per generic port (default: the ring size)\n"
"  --tx-segs K              split each tx buffer into K descriptors (1..16), placed in reverse\n"
"                           memory order\n"
"  --indirect               put tx chains in indirect tables\n"
"  --packed                 drive every queue as a packed ring (VIRTIO_F_RING_PACKED, bit 34): the\n"
"                           backend must offer it (else exit 2); SET_VRING_ADDR carries the\n"
"                           descriptor ring, driver and device area as desc, avail and used;\n"
"                           SET_VRING_BASE 0x80008000 (avail 0, wrap 1 in bit 15; used 0, wrap 1 in\n"
"                           bit 31, as QEMU); GET_VRING_BASE is checked in that form; with --packed,\n"
"                           --indirect needs INDIRECT_DESC negotiated (else exit 2), bad=next and\n"
"                           bad=loop are refused and --feature-mask must keep bit 34\n"
"  --inflight               negotiate INFLIGHT_SHMFD: GET_INFLIGHT_FD once, SET_INFLIGHT_FD (the same buffer) at\n"
"                           every start, as QEMU's vhost-user-blk does (split rings only)\n"
"  --reconnect              when the backend goes away, connect again and carry on: guest memory, rings and\n"
"                           buffers kept, rings restarted at the used index (BACKEND_GONE, RECONNECTED lines)\n"
"  --wide-index             name queues 256..1023 in SET_VRING_KICK/CALL/ERR with the bridge's extension\n"
"                           (index >> 8 in bits 16-31); the spec's 8-bit index stops at queue 255\n"
"  --feature-mask HEX       virtio features the driver may ack (e.g. 0x100000003 drops EVENT_IDX\n"
"                           and INDIRECT_DESC)\n"
"  --proto-mask HEX         protocol features to ack (default: the family's, as offered; qemu: MQ,\n"
"                           REPLY_ACK, BACKEND_REQ, CONFIG, RESET_DEVICE, CONFIGURE_MEM_SLOTS, STATUS)\n"
"  --no-multiport           do not ack VIRTIO_CONSOLE_F_MULTIPORT: port 0 is the one console on queues\n"
"                           0/1, no control queues (only --port 0); a CONFIG_CHANGE_MSG on the\n"
"                           backend request channel prints EVENT config_change cols= rows=\n"
"  --emerg-write            ack VIRTIO_CONSOLE_F_EMERG_WRITE (bit 2; Linux never does): allows 'emerg'\n"
"  --early-fill             fill the control receiveq before the rings start and do not kick\n"
"                           (the backend must rescan avail at start)\n"
"  --no-verify              checksum host->guest data without comparing it to the pattern\n"
"  --connect-timeout S      (default 20)  --stall-timeout S (default 30; 0 = never)\n"
"  --reply-timeout S        (default 10)\n"
"\n"
"Output on stdout, one line per fact:\n"
"  CONNECTED run=R socket=P | CONFIG cols= rows= max_nr_ports= num_queues= queue_num=\n"
"  FEATURES offered=0x.. acked=0x.. protocol_offered=0x.. protocol_acked=0x..\n"
"  EVENT port_add port=N | EVENT console_port port=N | NAME port=N NAME\n"
"  EVENT port_open port=N value=V        (PORT_OPEN from the device: host side)\n"
"  EVENT guest_open port=N value=V       (PORT_OPEN sent by the guest)\n"
"  EVENT port_remove port=N | EVENT resize port=N first= second= | EVENT vring_err queue=Q\n"
"  EVENT config_change cols= rows= | EMERG port=N bytes=B | REBOOT run=R | REBOOTED run=R reset=REQ\n"
"  LOOPBACK_FD ack=A closed=0|1 | REGION index= gpa= size= mmap_offset= |\n"
"  CROSS run=R port=N rx_buffers= tx_buffers= (used buffers that spanned two regions)\n"
"  READY (every listed port added) | IDLE | GARBAGE kind=K ack=A | BADDESC port=N ...\n"
"  RESULT run=R port=N name=NAME tx_bytes= tx_sum=HEX rx_bytes= rx_sum=HEX rx_discarded= bad_desc=\n"
"  THROUGHPUT run=R port=N tx_mbps= rx_mbps= | DISCONNECT run=R | RUN R done | DONE\n"
"Byte counts and sums are cumulative over runs; THROUGHPUT is per run (10^6 bytes/s).\n"
"\n"
"Pattern: xorshift64 (x^=x<<13; x^=x>>7; x^=x<<17), each state emitted as 8 little-endian\n"
"bytes; seed = base^1 for guest->host, base^2 for host->guest (0 becomes 1); default base for\n"
"port N = 0x9E3779B97F4A7C15 ^ (N << 32). Streams continue across runs. Checksum: FNV-1a 64.\n"
"\n"
"Benchmark mode (no checks of timing; figures only):\n"
"  --bench LIST             gh (guest->host, 32 KiB tx buffers), hg (host->guest, PAGE_SIZE rx\n"
"                           buffers), echo (round trips of --bench-msg bytes), sizes (guest->host\n"
"                           per tx buffer size), multi (aggregate over several ports), or all;\n"
"                           each beside its raw baseline (bare AF_UNIX socketpair between two\n"
"                           processes; bare eventfd + socket hops for echo). Without --socket only\n"
"                           the baselines run.\n"
"  --host EP                the backend's host endpoint of a port: unix:PATH (%%u = port number)\n"
"                           or tcp:IP:PORT (port + N - --bench-port for port N)\n"
"  --bench-port N           port of single-port measurements (default 1; 0 for a console-only peer)\n"
"  --bench-runs N (5)  --bench-bytes B (256M)  --bench-echo N (20000)  --bench-msg B (64)\n"
"  --bench-sizes LIST (256,1024,4096,16384,32768)  --bench-ports LIST (1,8,64,511)\n"
"  --bench-multi-bytes B    total per multi-port run (256M)  --bench-multi-depth N (4)\n"
"  --backend-pid PID        read the backend's user+sys CPU time from /proc/PID/stat\n"
"  Output: BENCH kind= target=bridge|baseline param= run= mbps= cpu_s_per_gb= (or p50_us= ...),\n"
"  SUMMARY kind= target= param= unit= median= min= max= runs=, LATPCT target= p= us=,\n"
"  SKIP kind= param= reason=..., DONE\n"
"\n"
"Exit: 0 ok, 1 protocol violation or corrupt data by the backend, 2 usage (or the backend lacks\n"
"what the options need, e.g. --packed), 3 connection failed or closed, 4 stalled (state dumped\n"
"on stderr).\n");
}

static void parse_port(const char *arg)
{
    char buf[256];
    if (strlen(arg) >= sizeof buf)
        die_code(EXIT_USAGE, "--port argument too long");
    strcpy(buf, arg);
    char *save, *t = strtok_r(buf, ":", &save);
    unsigned id;
    cmd_port(t, &id);
    struct port_spec *s = &opt.spec[id];
    s->listed = true;
    while ((t = strtok_r(NULL, ":", &save))) {
        if (!strncmp(t, "tx=", 3))
            s->tx = parse_size(t + 3, "tx bytes");
        else if (!strncmp(t, "rx=", 3))
            s->rx = parse_size(t + 3, "rx bytes");
        else if (!strcmp(t, "open"))
            s->open = true;
        else if (!strncmp(t, "seed=", 5)) {
            s->seeded = true;
            s->seed = strtoull(t + 5, NULL, 0);
        } else if (!strncmp(t, "bad=", 4)) {
            for (int i = 1; i <= BAD_INDIRECT; i++)
                if (!strcmp(t + 4, bad_names[i]))
                    s->bad = (enum bad_kind)i;
            if (s->bad == BAD_NONE)
                die_code(EXIT_USAGE, "bad descriptor kind '%s'", t + 4);
        } else
            die_code(EXIT_USAGE, "unknown --port field '%s'", t);
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    set_diag_hook(diag_dump, &g);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        while (a[0] == '-' && a[1] == '-' && a[2] == '-')
            a++;
        if (a[0] == '-' && a[1] != '-')
            ; /* single-dash long options are accepted as well */
        else
            a++;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) die_code(EXIT_USAGE, "%s needs a value", argv[i]); i++; } while (0)
        if (!strcmp(a, "-help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-socket")) { NEEDV(); opt.socket = v; }
        else if (!strcmp(a, "-port")) { NEEDV(); parse_port(v); }
        else if (!strcmp(a, "-close")) opt.close_at_end = true;
        else if (!strcmp(a, "-runs")) { NEEDV(); opt.runs = (unsigned)parse_size(v, "run count"); }
        else if (!strcmp(a, "-disconnect-after")) { NEEDV(); opt.disconnect_after = parse_size(v, "byte count"); }
        else if (!strcmp(a, "-garbage")) {
            NEEDV();
            if (opt.ngarbage == 8)
                die_code(EXIT_USAGE, "at most 8 --garbage");
            opt.garbage[opt.ngarbage++] = v;
        }
        else if (!strcmp(a, "-stdin")) opt.use_stdin = true;
        else if (!strcmp(a, "-queue-size")) { NEEDV(); opt.queue_size = (unsigned)parse_size(v, "queue size"); }
        else if (!strcmp(a, "-num-queues")) { NEEDV(); opt.num_queues = (unsigned)parse_size(v, "queue count"); }
        else if (!strcmp(a, "-tx-chunk")) { NEEDV(); opt.tx_chunk = (unsigned)parse_size(v, "chunk"); }
        else if (!strcmp(a, "-tx-depth")) { NEEDV(); opt.tx_depth = (unsigned)parse_size(v, "depth"); }
        else if (!strcmp(a, "-tx-segs")) { NEEDV(); opt.tx_segs = (unsigned)parse_size(v, "segments"); }
        else if (!strcmp(a, "-indirect")) opt.indirect = true;
        else if (!strcmp(a, "-packed")) opt.packed = true;
        else if (!strcmp(a, "-wide-index")) opt.wide_index = true;
        else if (!strcmp(a, "-inflight")) opt.inflight = true;
        else if (!strcmp(a, "-reconnect")) opt.reconnect = true;
        else if (!strcmp(a, "-feature-mask")) { NEEDV(); opt.feature_mask = strtoull(v, NULL, 0); }
        else if (!strcmp(a, "-proto-mask")) { NEEDV(); opt.proto_mask = strtoull(v, NULL, 0); }
        else if (!strcmp(a, "-early-fill")) opt.early_fill = true;
        else if (!strcmp(a, "-family")) {
            NEEDV();
            unsigned f = 0;
            while (f < 3 && strcmp(v, family_names[f]))
                f++;
            if (f == 3)
                die_code(EXIT_USAGE, "--family must be qemu, chv or loopback, got '%s'", v);
            opt.family = (enum family)f;
        }
        else if (!strcmp(a, "-no-multiport")) opt.no_multiport = true;
        else if (!strcmp(a, "-emerg-write")) opt.emerg_write = true;
        else if (!strcmp(a, "-no-verify")) opt.verify = false;
        else if (!strcmp(a, "-connect-timeout")) { NEEDV(); opt.connect_timeout = atof(v); }
        else if (!strcmp(a, "-stall-timeout")) { NEEDV(); opt.stall_timeout = atof(v); }
        else if (!strcmp(a, "-reply-timeout")) { NEEDV(); opt.reply_timeout = atof(v); }
        else if (!strcmp(a, "-bench")) { NEEDV(); opt.bench = true; bopt.kinds = v; }
        else if (!strcmp(a, "-host")) { NEEDV(); bopt.host = v; }
        else if (!strcmp(a, "-bench-runs")) { NEEDV(); bopt.runs = (unsigned)parse_size(v, "run count"); }
        else if (!strcmp(a, "-bench-bytes")) { NEEDV(); bopt.bytes = parse_size(v, "byte count"); }
        else if (!strcmp(a, "-bench-multi-bytes")) { NEEDV(); bopt.multi_bytes = parse_size(v, "byte count"); }
        else if (!strcmp(a, "-bench-echo")) { NEEDV(); bopt.echo_n = (unsigned)parse_size(v, "round trips"); }
        else if (!strcmp(a, "-bench-msg")) { NEEDV(); bopt.msg = (unsigned)parse_size(v, "message size"); }
        else if (!strcmp(a, "-bench-port")) { NEEDV(); cmd_port(v, &bopt.port); }
        else if (!strcmp(a, "-bench-multi-depth")) { NEEDV(); bopt.multi_depth = (unsigned)parse_size(v, "depth"); }
        else if (!strcmp(a, "-bench-sizes")) { NEEDV(); bopt.sizes = v; }
        else if (!strcmp(a, "-bench-ports")) { NEEDV(); bopt.ports = v; }
        else if (!strcmp(a, "-backend-pid")) { NEEDV(); bopt.backend_pid = atol(v); }
        else {
            fprintf(stderr, "vsb-frontend: unknown option '%s' (see --help)\n", argv[i]);
            return EXIT_USAGE;
        }
#undef NEEDV
    }
    if (!opt.socket && !opt.bench)
        die_code(EXIT_USAGE, "--socket PATH is required (see --help)");
    if (opt.queue_size < 2 || opt.queue_size > 32768 || (opt.queue_size & (opt.queue_size - 1)))
        die_code(EXIT_USAGE, "--queue-size must be a power of two in 2..32768");
    if (opt.tx_chunk == 0 || opt.tx_chunk > TX_CHUNK_MAX)
        die_code(EXIT_USAGE, "--tx-chunk must be 1..%u", TX_CHUNK_MAX);
    if (opt.tx_segs == 0 || opt.tx_segs > MAX_SEGS || opt.tx_segs > opt.queue_size)
        die_code(EXIT_USAGE, "--tx-segs must be 1..%u and at most the queue size", MAX_SEGS);
    if (opt.tx_depth > opt.queue_size)
        die_code(EXIT_USAGE, "--tx-depth must not exceed the queue size");
    if (opt.runs == 0)
        die_code(EXIT_USAGE, "--runs must be at least 1");
    if (opt.packed && !(opt.feature_mask & (1ull << F_RING_PACKED)))
        die_code(EXIT_USAGE, "--packed needs VIRTIO_F_RING_PACKED (bit 34), which --feature-mask 0x%" PRIx64 " drops",
                 opt.feature_mask);
    for (unsigned id = 0; opt.packed && id < MAX_PORTS_ALLOC; id++)
        if (opt.spec[id].bad == BAD_NEXT || opt.spec[id].bad == BAD_LOOP)
            die_code(EXIT_USAGE, "--port %u:bad=%s needs a split ring (a packed descriptor has no next field)", id,
                     bad_names[opt.spec[id].bad]);
    if (opt.use_stdin) {
        int fl = fcntl(0, F_GETFL);
        if (fl >= 0)
            fcntl(0, F_SETFL, fl | O_NONBLOCK);
        g.stdin_open = true;
    }
    for (unsigned id = 0; id < MAX_PORTS_ALLOC; id++) {
        struct port_spec *s = &opt.spec[id];
        uint64_t base = s->seeded ? s->seed : 0x9E3779B97F4A7C15ull ^ ((uint64_t)id << 32);
        stream_init(&g.port[id].tx_stream, base ^ 1);
        stream_init(&g.port[id].rx_stream, base ^ 2);
        g.port[id].tx_sum = g.port[id].rx_sum = FNV_OFFSET;
    }
    g.vu.sock = -1;
    g.vu.family = opt.family;
    g.vu.wide_index = opt.wide_index;
    g.vu.reply_timeout = opt.reply_timeout;
    g.inflight_fd = -1;
    g.backend_fd = -1;
    if (opt.reconnect && opt.packed)
        die_code(EXIT_USAGE, "--reconnect with --packed: resuming a packed ring after a reconnect is not implemented");
    if (opt.inflight && opt.packed)
        die_code(EXIT_USAGE, "--inflight with --packed: the packed ring's inflight layout is not implemented");
    if (opt.family != FAM_QEMU && opt.bench)
        die_code(EXIT_USAGE, "--bench plays QEMU only (--family qemu)");
    if (opt.no_multiport && opt.early_fill)
        die_code(EXIT_USAGE, "--early-fill fills the control receiveq, which --no-multiport does not have");
    for (unsigned id = 1; opt.no_multiport && id < MAX_PORTS_ALLOC; id++)
        if (opt.spec[id].listed)
            die_code(EXIT_USAGE, "--port %u with --no-multiport: without MULTIPORT there is only port 0", id);
    if (opt.inflight && opt.bench)
        die_code(EXIT_USAGE, "--inflight is a scenario option, not for --bench");
    if (opt.bench)
        return bench_main(&g);
    for (unsigned r = 1; r <= opt.runs; r++) {
        one_run(&g, r);
        if (opt.use_stdin && !g.stdin_open)
            break;
    }
    out("DONE");
    return 0;
}
