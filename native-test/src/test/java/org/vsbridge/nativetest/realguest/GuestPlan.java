package org.vsbridge.nativetest.realguest;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The checks one guest boot runs, in order; rendered as the {@code vsb.checks=} kernel
 * parameter that {@code /init} reads (grammar in {@code src/test/guest/init}). Step numbers
 * start at 1, as the guest prints them.
 */
final class GuestPlan {
    /** One check. {@code target} is a port name or a console tty ({@code hvc0}). */
    sealed interface Step permits ListPorts, G2h, H2g, Echo, OpenClose, HostConn, Sleep {
        String render();

        default String target() {
            return null;
        }
    }

    record ListPorts(int ports, int named) implements Step {
        public String render() {
            return "list:" + ports + ":" + named;
        }
    }

    /** Guest to host: the guest writes {@code bytes} of pattern {@code seed}. */
    record G2h(String target, long bytes, long seed, boolean md5) implements Step {
        public String render() {
            return "g2h:" + target + ":" + bytes + ":" + seed + ":" + (md5 ? "md5" : "fast");
        }
    }

    /** Host to guest: the host writes {@code bytes} of pattern {@code seed} once the guest is ready. */
    record H2g(String target, long bytes, long seed, boolean md5) implements Step {
        public String render() {
            return "h2g:" + target + ":" + bytes + ":" + seed + ":" + (md5 ? "md5" : "fast");
        }
    }

    record Echo(String target, int count, int size) implements Step {
        public String render() {
            return "echo:" + target + ":" + count + ":" + size;
        }
    }

    record OpenClose(String target, int holdMillis) implements Step {
        public String render() {
            return "openclose:" + target + ":" + holdMillis;
        }
    }

    record HostConn(String target) implements Step {
        public String render() {
            return "hostconn:" + target;
        }
    }

    record Sleep(int millis) implements Step {
        public String render() {
            return "sleep:" + millis;
        }
    }

    private final List<Step> steps = new ArrayList<>();

    GuestPlan add(final Step step) {
        steps.add(step);
        return this;
    }

    /** Returns the step number the guest will print for the step just added. */
    int lastStep() {
        return steps.size();
    }

    List<Step> steps() {
        return List.copyOf(steps);
    }

    Step step(final int number) {
        return steps.get(number - 1);
    }

    String checksParameter() {
        return "vsb.checks=" + steps.stream().map(Step::render).collect(Collectors.joining(","));
    }
}
