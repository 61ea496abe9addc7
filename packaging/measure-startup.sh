#!/bin/sh
# Measures the bridge's start-up time (exec -> READY=1 on a real NOTIFY_SOCKET, as systemd sees it) and
# its idle RSS (3 s after READY=1), with 1 and with 64 ports, for three JVM option sets:
#   default   java -jar
#   tuned     -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx64m (+ MaxDirectMemorySize for the port rings)
#   tuned+cds the same with an AppCDS archive made by a training run (-XX:ArchiveClassesAtExit)
# Prints the median of RUNS runs (default 5) per line. Every run ends with SIGTERM and must exit 0.
#
# Usage (repository root, after `mvn -B -q package -DskipTests`):
#   packaging/measure-startup.sh [RUNS]
# Environment: JAVA (default: java in PATH), JAR (default: bridge-core/target/vhost-serial-bridge.jar).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
exec python3 - "$root" "${1:-5}" <<'PY'
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time

root, runs = sys.argv[1], int(sys.argv[2])
java = os.environ.get("JAVA", "java")
jar = os.environ.get("JAR", os.path.join(root, "bridge-core/target/vhost-serial-bridge.jar"))
work = tempfile.mkdtemp(prefix="vsb-measure-")
TUNED = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx64m", "-XX:MaxDirectMemorySize=512m"]

def config(ports):
    path = os.path.join(work, f"ports{ports}.json")
    devices = [{"driver": "virtconsole", "chardev": "n0", "id": "con0"}]
    devices += [{"driver": "virtserialport", "chardev": f"n{i}", "name": f"org.measure.{i}", "id": f"p{i}"}
                for i in range(1, ports)]
    with open(path, "w") as f:
        json.dump({"socket-path": os.path.join(work, f"vsb{ports}.sock"), "log-level": "warning",
                   "chardevs": [f"null,id=n{i}" for i in range(ports)], "devices": devices,
                   "qmp": [f"unix:{os.path.join(work, f'vsb{ports}.qmp')},server=on,wait=off"]}, f)
    return path

def run_once(jvm_opts, cfg):
    notify_path = os.path.join(work, "notify")
    if os.path.exists(notify_path):
        os.unlink(notify_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify_path)
    listener.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    t0 = time.monotonic()
    p = subprocess.Popen([java] + jvm_opts + ["-jar", jar, "--config", cfg], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ready = None
    try:
        while ready is None:
            msg = listener.recv(4096).decode()
            if "READY=1" in msg.split("\n"):
                ready = time.monotonic() - t0
        time.sleep(3)
        with open(f"/proc/{p.pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024.0
        p.send_signal(signal.SIGTERM)
        code = p.wait(timeout=60)
    except Exception:
        p.kill()
        err = p.stderr.read().decode(errors="replace")
        raise SystemExit(f"run failed: {' '.join(jvm_opts)} {cfg}\n{err}")
    finally:
        listener.close()
    if code != 0:
        raise SystemExit(f"exit status {code} after SIGTERM: {p.stderr.read().decode(errors='replace')}")
    return ready * 1000.0, rss

def training_archive(cfg):
    jsa = os.path.join(work, "app.jsa")
    if not os.path.exists(jsa):
        run_once(TUNED + [f"-XX:ArchiveClassesAtExit={jsa}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"], cfg)
    return ["-XX:SharedArchiveFile=" + jsa, "-Xlog:cds=off"]

version = subprocess.run([java, "-version"], capture_output=True, text=True).stderr.splitlines()[0]
print(f"{version}; {os.cpu_count()} CPUs; median of {runs} runs; jar {jar}")
print(f"{'options':<12} {'ports':>5} {'exec->READY=1 ms':>17} {'idle RSS MiB':>13}")
for ports in (1, 64):
    cfg = config(ports)
    for name, opts in (("default", []), ("tuned", TUNED), ("tuned+cds", None)):
        if opts is None:
            opts = TUNED + training_archive(config(64))
        results = [run_once(opts, cfg) for _ in range(runs)]
        print(f"{name:<12} {ports:>5} {statistics.median(r[0] for r in results):>17.0f} "
              f"{statistics.median(r[1] for r in results):>13.1f}")
PY
