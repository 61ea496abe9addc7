package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

class ChardevQapiTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static ChardevOptions map(final String id, final String backend) throws Exception {
        return ChardevOptions.fromQapi(id, json(backend));
    }

    private static JsonNode json(final String s) throws JsonProcessingException {
        return JSON.readTree(s.replace('\'', '"'));
    }

    private static void fails(final String backend, final String message) {
        final ChardevException e = assertThrows(ChardevException.class,
            () -> ChardevOptions.fromQapi("c", json(backend)));
        assertEquals(message, e.getMessage(), backend);
    }

    @Test
    void unixServerExample() throws Exception {
        final ChardevOptions o = map("charchannel2", "{'type':'socket','data':{'addr':{'type':'unix','data':"
            + "{'path':'/tmp/charchannel2.socket'}},'server':true,'wait':false}}");
        assertEquals("charchannel2", o.id());
        final ChardevBackend.Socket s = (ChardevBackend.Socket) o.backend();
        assertEquals(new SocketAddressLegacy.Unix("/tmp/charchannel2.socket", false, true), s.addr());
        assertTrue(s.server());
        assertFalse(s.waitForClient());
    }

    @Test
    void qmpDefaultsServerTrueWaitFalse() throws Exception {
        final ChardevBackend.Socket s = (ChardevBackend.Socket) map("c", "{'type':'socket','data':{'addr':"
            + "{'type':'inet','data':{'host':'127.0.0.1','port':'4444'}}}}").backend();
        assertTrue(s.server());
        assertFalse(s.waitForClient());
        assertFalse(s.nodelay());
        assertEquals(new SocketAddressLegacy.Inet("127.0.0.1", "4444"), s.addr());

        final ChardevBackend.Socket waiting = (ChardevBackend.Socket) map("c", "{'type':'socket','data':{'addr':"
            + "{'type':'unix','data':{'path':'/s'}},'wait':true,'nodelay':true}}").backend();
        assertTrue(waiting.waitForClient());
        assertTrue(waiting.nodelay());
    }

    @Test
    void clientWithWaitIsRefused() {
        fails("{'type':'socket','data':{'addr':{'type':'unix','data':{'path':'/s'}},'server':false,'wait':false}}",
            "'wait' option is incompatible with socket in client connect mode");
        fails("{'type':'socket','data':{'addr':{'type':'unix','data':{'path':'/s'}},'reconnect-ms':1}}",
            "'reconnect-ms' option is incompatible with socket in server listen mode");
    }

    @Test
    void memberErrors() {
        fails("{'type':'null','data':{'x':1}}", "Parameter 'backend.data.x' is unexpected");
        fails("{'type':'null','data':{},'extra':true}", "Parameter 'backend.extra' is unexpected");
        fails("{'type':'null'}", "Parameter 'backend.data' is missing");
        fails("{'data':{}}", "Parameter 'backend.type' is missing");
        fails("{'type':'file','data':{}}", "Parameter 'backend.data.out' is missing");
        fails("{'type':'socket','data':{'addr':{'type':'unix','data':{'path':'/s'}},'server':'yes'}}",
            "Invalid parameter type for 'backend.data.server', expected: boolean");
        fails("{'type':'ringbuf','data':{'size':'big'}}",
            "Invalid parameter type for 'backend.data.size', expected: integer");
        fails("{'type':'file','data':{'out':7}}", "Invalid parameter type for 'backend.data.out', expected: string");
        fails("{'type':'socket','data':{'addr':{'type':'carrier-pigeon','data':{}}}}",
            "Parameter 'type' does not accept value 'carrier-pigeon'");
        fails("{'type':'socket','data':{'addr':{'type':'unix','data':{'path':'/s','mode':1}}}}",
            "Parameter 'backend.data.addr.data.mode' is unexpected");
        fails("{'type':'bogus','data':{}}", "Parameter 'type' does not accept value 'bogus'");
        fails("[]", "Invalid parameter type for 'backend', expected: object");
    }

    @Test
    void fileRingbufAndCommon() throws Exception {
        final ChardevOptions f = map("bar", "{'type':'file','data':{'out':'/tmp/bar.log','in':'/tmp/in',"
            + "'append':true,'logfile':'/tmp/l','logappend':true}}");
        assertEquals(new ChardevBackend.File("/tmp/bar.log", "/tmp/in", true), f.backend());
        assertEquals("/tmp/l", f.logfile());
        assertTrue(f.logappend());

        assertEquals(new ChardevBackend.Ringbuf(65536), map("r", "{'type':'ringbuf','data':{}}").backend());
        assertEquals(new ChardevBackend.Memory(1024), map("r", "{'type':'memory','data':{'size':1024}}").backend());
        fails("{'type':'ringbuf','data':{'size':1000}}", "size of ringbuf chardev must be power of two");
        assertEquals(new ChardevBackend.Null(), map("foo", "{'type':'null','data':{}}").backend());
        assertEquals(new ChardevBackend.Stdio(false), map("s", "{'type':'stdio','data':{'signal':false}}").backend());
        assertEquals(new ChardevBackend.Pty(null), map("baz", "{'type':'pty','data':{}}").backend());
    }
}
