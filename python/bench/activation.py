"""One activation of mock_kubernetes on a warm server: the reset to the
baseline (after the previous activation created an object, as a test
does), the settings and the client set-up. Prints the median and the range
over the runs.

    make bench-python    (or: .venv/bin/python python/bench/activation.py)
"""

import statistics
import sys
import time

from kubernetes import client

from mockernetes import mock_kubernetes

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def main():
    with mock_kubernetes():  # start the server: not measured
        pass
    times = []
    for i in range(RUNS):
        start = time.perf_counter()
        m = mock_kubernetes().start()
        times.append(time.perf_counter() - start)
        try:
            # What a test leaves behind for the next reset to undo.
            client.CoreV1Api().create_namespaced_config_map(
                "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm-{i}")))
        finally:
            m.stop()
    ms = sorted(t * 1e3 for t in times)
    print(f"activation (reset + client set-up), {RUNS} runs: median {statistics.median(ms):.1f} ms, "
          f"p10 {ms[len(ms) // 10]:.1f} ms, p90 {ms[len(ms) * 9 // 10]:.1f} ms")


if __name__ == "__main__":
    main()
