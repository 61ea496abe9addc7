package org.vsbridge.core.objects;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.vsbridge.chardev.Authorizer;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.core.cli.CommandLine;

/** --object / object-add parsing, authz decisions, and the registry's QEMU wording. */
class ObjectRegistryTest {

    @Test
    void authzSimpleAndListDecideOnTheDistinguishedName() throws Exception {
        final ObjectRegistry r = new ObjectRegistry();
        r.add(ObjectSpec.parse("authz-simple,id=one,identity=CN=client1,,O=Example"));
        r.add(ObjectSpec.parse("{\"qom-type\":\"authz-list\",\"id\":\"list\",\"policy\":\"deny\",\"rules\":["
            + "{\"match\":\"CN=evil*\",\"policy\":\"deny\",\"format\":\"glob\"},"
            + "{\"match\":\"CN=*,O=Example\",\"policy\":\"allow\",\"format\":\"glob\"},"
            + "{\"match\":\"CN=exact,O=Other\",\"policy\":\"allow\"}]}"));
        final Authorizer one = r.authz("one");
        assertTrue(one.isAllowed("CN=client1,O=Example"));
        assertFalse(one.isAllowed("CN=client2,O=Example"));
        final Authorizer list = r.authz("list");
        assertTrue(list.isAllowed("CN=anyone,O=Example"));
        assertFalse(list.isAllowed("CN=evil1,O=Example"), "first matching rule wins");
        assertTrue(list.isAllowed("CN=exact,O=Other"));
        assertFalse(list.isAllowed("CN=exact,O=Others"), "default policy deny");

        assertEquals("attempt to add duplicate property 'one' to object (type 'container')",
            assertThrows(ObjectException.class, () -> r.add(ObjectSpec.parse("authz-simple,id=one,identity=x")))
                .getMessage());
        r.delete("one");
        assertEquals("object 'one' not found", assertThrows(ObjectException.class, () -> r.delete("one"))
            .getMessage());
        assertEquals("Cannot find QAuthZ object ID one",
            assertThrows(ChardevException.class, () -> r.authz("one")).getMessage());
        assertEquals("Property 'authz-simple.colour' not found", assertThrows(ObjectException.class,
            () -> r.add(ObjectSpec.parse("authz-simple,id=c,identity=x,colour=red"))).getMessage());
        assertTrue(assertThrows(ObjectException.class, () -> r.add(ObjectSpec.parse("tls-creds-psk,id=p,dir=/x")))
            .getMessage().contains("not supported"));
        // QEMU 10.2's words (its QAPI schema): a missing required property, a type it does not know.
        assertEquals("Parameter 'identity' is missing", assertThrows(ObjectException.class,
            () -> r.add(ObjectSpec.parse("authz-simple,id=noid"))).getMessage());
        assertEquals("Parameter 'qom-type' does not accept value 'nosuchtype'", assertThrows(ObjectException.class,
            () -> r.add(ObjectSpec.parse("nosuchtype,id=o1"))).getMessage());
    }

    @Test
    void commandLineTakesObjectsAndMuxPairs() throws Exception {
        final CommandLine.Parsed p = CommandLine.parse(new String[] {"--socket-path", "/tmp/v.sock",
            "--object", "authz-simple,id=a,identity=CN=x",
            "--chardev", "socket,id=m,path=/tmp/m.sock,server=on,wait=off,mux=on",
            "--device", "virtconsole,chardev=m", "--device", "virtserialport,chardev=m,name=n"});
        assertEquals(List.of("a"), p.config().objects().stream().map(ObjectSpec::id).toList());
        assertEquals(List.of("m-base", "m"), p.config().chardevs().stream().map(o -> o.id()).toList());
    }
}
