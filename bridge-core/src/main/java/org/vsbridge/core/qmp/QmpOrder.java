package org.vsbridge.core.qmp;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * The orders in which QEMU meets the members of a JSON object, so that when several are wrong the bridge names the
 * same one QEMU names. QEMU keeps an object in a QDict (512 buckets by the tdb hash, newest first within a bucket)
 * and checks the top-level QMP members and device properties in that order; the arguments left over after a
 * command's parameters are read sit in a GLib hash table, and the first of those in its slot order is the one called
 * "unexpected".
 */
public final class QmpOrder {

    private static final int BUCKETS = 512;
    private static final int[] PRIME_MOD = {1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381,
        32749, 65521, 131071, 262139, 524287, 1048573};

    private QmpOrder() {
    }

    private static int tdbHash(final String key) {
        final byte[] b = key.getBytes(StandardCharsets.UTF_8);
        int value = 0x238F13AF * b.length;
        for (int i = 0; i < b.length; i++) {
            value += (b[i] & 0xFF) << (i * 5 % 24);
        }
        return 1103515243 * value + 12345;
    }

    /** The keys in QDict iteration order, given in insertion (text) order. */
    public static List<String> qdict(final Collection<String> keys) {
        final List<List<String>> buckets = new ArrayList<>();
        for (int i = 0; i < BUCKETS; i++) {
            buckets.add(null);
        }
        for (final String key : keys) {
            final int bucket = Integer.remainderUnsigned(tdbHash(key), BUCKETS);
            if (buckets.get(bucket) == null) {
                buckets.set(bucket, new ArrayList<>());
            }
            buckets.get(bucket).add(0, key);
        }
        final List<String> order = new ArrayList<>(keys.size());
        for (final List<String> bucket : buckets) {
            if (bucket != null) {
                order.addAll(bucket);
            }
        }
        return order;
    }

    private static int strHash(final String key) {
        int h = 5381;
        for (final byte b : key.getBytes(StandardCharsets.UTF_8)) {
            h = (h << 5) + h + b; // GLib's g_str_hash adds the byte as a signed char
        }
        return h == 0 || h == 1 ? 2 : h;
    }

    /** The keys in GHashTable slot order after inserting them in the given order (GLib 2.60 and later). */
    public static List<String> ghash(final List<String> keys) {
        int shift = 3;
        String[] slots = new String[1 << shift];
        int nodes = 0;
        for (final String key : keys) {
            slots = insert(slots, shift, key);
            nodes++;
            if (slots.length <= nodes + nodes / 16) {
                int n = (int) (nodes * 1.333);
                int newShift = 0;
                while (n != 0) {
                    n >>= 1;
                    newShift++;
                }
                shift = Math.max(newShift, 3);
                String[] bigger = new String[1 << shift];
                for (final String old : slots) {
                    if (old != null) {
                        bigger = insert(bigger, shift, old);
                    }
                }
                slots = bigger;
            }
        }
        final List<String> order = new ArrayList<>(keys.size());
        for (final String s : slots) {
            if (s != null) {
                order.add(s);
            }
        }
        return order;
    }

    private static String[] insert(final String[] slots, final int shift, final String key) {
        final int mask = slots.length - 1;
        int index = Integer.remainderUnsigned(strHash(key) * 11, PRIME_MOD[shift]);
        int step = 0;
        while (slots[index] != null) {
            if (slots[index].equals(key)) {
                return slots;
            }
            step++;
            index = (index + step) & mask;
        }
        slots[index] = key;
        return slots;
    }
}
