package org.vsbridge.core.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.vsbridge.console.PortSpec;

class PortPlanTest {

    private static DeviceSpec console(final String chardev, final int nr) {
        return new DeviceSpec(true, chardev, null, chardev, nr);
    }

    private static DeviceSpec port(final String chardev, final int nr) {
        return new DeviceSpec(false, chardev, "org." + chardev, chardev, nr);
    }

    @Test
    void numbersPortsAsQemu() throws UsageException {
        final PortPlan plan = PortPlan.of(List.of(port("a", -1), console("c", -1), port("b", -1), console("d", -1)), -1);
        assertEquals(List.of(1, 0, 2, 3), plan.ports().stream().map(PortSpec::nr).toList());
        assertEquals(4, plan.maxPorts());
    }

    @Test
    void serialPortsNeverTakePortZero() throws UsageException {
        final PortPlan plan = PortPlan.of(List.of(port("a", -1)), -1);
        assertEquals(1, plan.ports().get(0).nr());
        assertEquals(2, plan.maxPorts());
    }

    @Test
    void explicitNumbersAndMaxPorts() throws UsageException {
        final PortPlan plan = PortPlan.of(List.of(port("a", 5), port("b", -1)), 8);
        assertEquals(List.of(5, 1), plan.ports().stream().map(PortSpec::nr).toList());
        assertEquals(8, plan.maxPorts());
    }

    @Test
    void errorsInQemuWords() {
        assertEquals("virtio-serial-bus: A port already exists at id 2",
            assertThrows(UsageException.class, () -> PortPlan.of(List.of(port("a", 2), port("b", 2)), -1)).getMessage());
        assertEquals("virtio-serial-bus: Port number 0 on virtio-serial devices reserved for virtconsole devices "
                + "for backward compatibility",
            assertThrows(UsageException.class, () -> PortPlan.of(List.of(port("a", 0)), -1)).getMessage());
        assertEquals("virtio-serial-bus: Out-of-range port id specified, max. allowed: 3",
            assertThrows(UsageException.class, () -> PortPlan.of(List.of(port("a", 4)), 4)).getMessage());
        assertEquals("virtio-serial-bus: Maximum port limit for this device reached",
            assertThrows(UsageException.class, () -> PortPlan.of(List.of(port("a", -1), port("b", -1)), 2)).getMessage());
        assertEquals("virtio-serial-bus: A port already exists by name org.x",
            assertThrows(UsageException.class, () -> PortPlan.of(List.of(new DeviceSpec(false, "a", "org.x", null, -1),
                new DeviceSpec(false, "b", "org.x", null, -1)), -1)).getMessage());
        assertEquals("Duplicate ID 'p' for device",
            assertThrows(UsageException.class, () -> PortPlan.of(List.of(new DeviceSpec(false, "a", null, "p", -1),
                new DeviceSpec(false, "b", null, "p", -1)), -1)).getMessage());
        assertEquals("Property 'virtserialport.chardev' can't take value 'a', it's in use",
            assertThrows(UsageException.class, () -> PortPlan.of(List.of(port("a", -1),
                new DeviceSpec(false, "a", null, null, -1)), -1)).getMessage());
    }
}
