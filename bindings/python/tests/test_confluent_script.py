"""An existing confluent_kafka producer script, run unchanged except its import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kp

from conftest import consume_all

SCRIPT = Path(__file__).parent / "scripts" / "confluent_producer.py"
IMPORT = "from confluent_kafka import KafkaError, KafkaException, Producer"


@pytest.mark.parametrize("client", ["confluent_kafka", "kp"])
def test_confluent_script_runs_unchanged_on_kp(bootstrap: str, new_topic: Any, tmp_path: Path,
                                               client: str) -> None:
    topic = new_topic(4)
    source = SCRIPT.read_text()
    assert source.count(IMPORT) == 1
    script = tmp_path / "producer.py"
    script.write_text(source.replace(IMPORT, IMPORT.replace("confluent_kafka", client)))
    n = 5000
    # the same kp the tests import (installed, or this source tree)
    env = dict(os.environ, PYTHONPATH=str(Path(kp.__file__).resolve().parents[1]))
    run = subprocess.run([sys.executable, str(script), bootstrap, topic, str(n)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["partitions 4", f"delivered {n} failed 0 remaining 0"]
    got = consume_all(bootstrap, topic, n)
    assert sorted(m.value() for m in got) == sorted(b"line %d" % i for i in range(n))
    for m in got:
        seq = int(m.value().split()[1])
        assert m.key() == str(seq % 17).encode() and m.headers() == [("seq", str(seq).encode())]
