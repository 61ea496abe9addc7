package org.vsbridge.vhost.protocol;

/**
 * Frontend-to-backend request ids of the vhost-user protocol (QEMU docs/interop/vhost-user.rst), their names
 * for log lines, the payload size each one must have, and whether it owes a reply of its own.
 */
public final class Request {

    public static final int GET_FEATURES = 1;
    public static final int SET_FEATURES = 2;
    public static final int SET_OWNER = 3;
    public static final int RESET_OWNER = 4;
    public static final int SET_MEM_TABLE = 5;
    public static final int SET_LOG_BASE = 6;
    public static final int SET_LOG_FD = 7;
    public static final int SET_VRING_NUM = 8;
    public static final int SET_VRING_ADDR = 9;
    public static final int SET_VRING_BASE = 10;
    public static final int GET_VRING_BASE = 11;
    public static final int SET_VRING_KICK = 12;
    public static final int SET_VRING_CALL = 13;
    public static final int SET_VRING_ERR = 14;
    public static final int GET_PROTOCOL_FEATURES = 15;
    public static final int SET_PROTOCOL_FEATURES = 16;
    public static final int GET_QUEUE_NUM = 17;
    public static final int SET_VRING_ENABLE = 18;
    public static final int SEND_RARP = 19;
    public static final int NET_SET_MTU = 20;
    public static final int SET_BACKEND_REQ_FD = 21;
    public static final int IOTLB_MSG = 22;
    public static final int SET_VRING_ENDIAN = 23;
    public static final int GET_CONFIG = 24;
    public static final int SET_CONFIG = 25;
    public static final int CREATE_CRYPTO_SESSION = 26;
    public static final int CLOSE_CRYPTO_SESSION = 27;
    public static final int POSTCOPY_ADVISE = 28;
    public static final int POSTCOPY_LISTEN = 29;
    public static final int POSTCOPY_END = 30;
    public static final int GET_INFLIGHT_FD = 31;
    public static final int SET_INFLIGHT_FD = 32;
    public static final int GPU_SET_SOCKET = 33;
    public static final int RESET_DEVICE = 34;
    public static final int VRING_KICK = 35;
    public static final int GET_MAX_MEM_SLOTS = 36;
    public static final int ADD_MEM_REG = 37;
    public static final int REM_MEM_REG = 38;
    public static final int SET_STATUS = 39;
    public static final int GET_STATUS = 40;
    public static final int GET_SHARED_OBJECT = 41;
    public static final int SET_DEVICE_STATE_FD = 42;
    public static final int CHECK_DEVICE_STATE = 43;
    public static final int GET_SHMEM_CONFIG = 44;

    /** virtio-loopback's private request; same id as SET_STATUS (RESEARCH §7). */
    public static final int SHARE_LOOPBACK_FD = 39;

    public static final int MAX_ID = 44;

    /** Payload size of a request whose size depends on its content (checked by its decoder). */
    public static final int VARIABLE = -1;
    /** Payload size not checked: the request is refused anyway. */
    public static final int UNCHECKED = -2;

    private static final String[] NAMES = new String[MAX_ID + 1];
    private static final int[] SIZES = new int[MAX_ID + 1];
    private static final boolean[] OWES_REPLY = new boolean[MAX_ID + 1];
    private static final boolean[] U64_REPLY = new boolean[MAX_ID + 1];

    static {
        java.util.Arrays.fill(SIZES, UNCHECKED);
        def(GET_FEATURES, "GET_FEATURES", 0, true, true);
        def(SET_FEATURES, "SET_FEATURES", 8, false, false);
        def(SET_OWNER, "SET_OWNER", 0, false, false);
        def(RESET_OWNER, "RESET_OWNER", 0, false, false);
        def(SET_MEM_TABLE, "SET_MEM_TABLE", VARIABLE, false, false);
        def(SET_LOG_BASE, "SET_LOG_BASE", UNCHECKED, true, true);
        def(SET_LOG_FD, "SET_LOG_FD", UNCHECKED, false, false);
        def(SET_VRING_NUM, "SET_VRING_NUM", Payloads.VRING_STATE_SIZE, false, false);
        def(SET_VRING_ADDR, "SET_VRING_ADDR", Payloads.VRING_ADDR_SIZE, false, false);
        def(SET_VRING_BASE, "SET_VRING_BASE", Payloads.VRING_STATE_SIZE, false, false);
        def(GET_VRING_BASE, "GET_VRING_BASE", Payloads.VRING_STATE_SIZE, true, false);
        def(SET_VRING_KICK, "SET_VRING_KICK", 8, false, false);
        def(SET_VRING_CALL, "SET_VRING_CALL", 8, false, false);
        def(SET_VRING_ERR, "SET_VRING_ERR", 8, false, false);
        def(GET_PROTOCOL_FEATURES, "GET_PROTOCOL_FEATURES", 0, true, true);
        def(SET_PROTOCOL_FEATURES, "SET_PROTOCOL_FEATURES", 8, false, false);
        def(GET_QUEUE_NUM, "GET_QUEUE_NUM", 0, true, true);
        def(SET_VRING_ENABLE, "SET_VRING_ENABLE", Payloads.VRING_STATE_SIZE, false, false);
        def(SEND_RARP, "SEND_RARP", UNCHECKED, false, false);
        def(NET_SET_MTU, "NET_SET_MTU", UNCHECKED, false, false);
        def(SET_BACKEND_REQ_FD, "SET_BACKEND_REQ_FD", UNCHECKED, false, false);
        def(IOTLB_MSG, "IOTLB_MSG", UNCHECKED, true, true);
        def(SET_VRING_ENDIAN, "SET_VRING_ENDIAN", UNCHECKED, false, false);
        def(GET_CONFIG, "GET_CONFIG", VARIABLE, true, false);
        def(SET_CONFIG, "SET_CONFIG", VARIABLE, false, false);
        def(CREATE_CRYPTO_SESSION, "CREATE_CRYPTO_SESSION", UNCHECKED, true, false);
        def(CLOSE_CRYPTO_SESSION, "CLOSE_CRYPTO_SESSION", UNCHECKED, false, false);
        def(POSTCOPY_ADVISE, "POSTCOPY_ADVISE", UNCHECKED, true, false);
        def(POSTCOPY_LISTEN, "POSTCOPY_LISTEN", UNCHECKED, false, false);
        def(POSTCOPY_END, "POSTCOPY_END", UNCHECKED, true, true);
        def(GET_INFLIGHT_FD, "GET_INFLIGHT_FD", UNCHECKED, true, false);
        def(SET_INFLIGHT_FD, "SET_INFLIGHT_FD", UNCHECKED, false, false);
        def(GPU_SET_SOCKET, "GPU_SET_SOCKET", UNCHECKED, false, false);
        def(RESET_DEVICE, "RESET_DEVICE", 0, false, false);
        def(VRING_KICK, "VRING_KICK", UNCHECKED, false, false);
        def(GET_MAX_MEM_SLOTS, "GET_MAX_MEM_SLOTS", 0, true, true);
        def(ADD_MEM_REG, "ADD_MEM_REG", Payloads.SINGLE_REGION_SIZE, false, false);
        def(REM_MEM_REG, "REM_MEM_REG", Payloads.SINGLE_REGION_SIZE, false, false);
        def(SET_STATUS, "SET_STATUS", 8, false, false);
        def(GET_STATUS, "GET_STATUS", 0, true, true);
        def(GET_SHARED_OBJECT, "GET_SHARED_OBJECT", UNCHECKED, true, false);
        def(SET_DEVICE_STATE_FD, "SET_DEVICE_STATE_FD", UNCHECKED, true, true);
        def(CHECK_DEVICE_STATE, "CHECK_DEVICE_STATE", UNCHECKED, true, true);
        def(GET_SHMEM_CONFIG, "GET_SHMEM_CONFIG", UNCHECKED, true, false);
    }

    private static void def(final int id, final String name, final int size, final boolean owesReply,
                            final boolean u64Reply) {
        NAMES[id] = name;
        SIZES[id] = size;
        OWES_REPLY[id] = owesReply;
        U64_REPLY[id] = u64Reply;
    }

    private Request() {
    }

    public static boolean isKnown(final int id) {
        return id >= 1 && id <= MAX_ID;
    }

    /** Name for log lines, e.g. {@code SET_VRING_ADDR(9)}; unknown ids read as {@code UNKNOWN(n)}. */
    public static String name(final int id) {
        return (isKnown(id) ? NAMES[id] : "UNKNOWN") + "(" + Integer.toUnsignedString(id) + ")";
    }

    /** Payload size this request must have, {@link #VARIABLE} or {@link #UNCHECKED}. */
    public static int expectedSize(final int id) {
        return isKnown(id) ? SIZES[id] : UNCHECKED;
    }

    /** The request always gets a reply message of its own (so REPLY_ACK adds none). */
    public static boolean owesReply(final int id) {
        return isKnown(id) && OWES_REPLY[id];
    }

    /** Its reply is a u64 (so a failure can be a non-zero u64); other replies fail with an empty payload. */
    public static boolean hasU64Reply(final int id) {
        return isKnown(id) && U64_REPLY[id];
    }
}
