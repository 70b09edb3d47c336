"""The embedded broker: URLs, claims, acks, restores, routing across processes, fanout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu import Connection, Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES

from taskqueue_kit import _sqlite

from .conftest import run_helper, sql


def publish(conn: Connection, queue: str, *bodies: object) -> None:
    producer = conn.Producer(serializer="json")
    for body in bodies:
        producer.publish(body, routing_key=queue)


def declare(conn: Connection, name: str, exchange: Exchange | None = None, key: str = "") -> None:
    Queue(name, exchange or Exchange(""), routing_key=key or name)(conn.default_channel).declare()


def rows(home: Path, statement: str) -> list[tuple[object, ...]]:
    return sql(home / "broker.sqlite3", statement)


@pytest.mark.parametrize("name", ["broker.sqlite3", "with space %41 #x?.sqlite3"])
def test_url_round_trips_through_kombu(tmp_path: Path, name: str) -> None:
    """broker_url(path) parses back to the same absolute path, odd characters included."""
    path = tmp_path / "data dir" / name
    url = _sqlite.broker_url(path)
    assert url.startswith("tqsqlite:////")
    assert Path(Connection(url).virtual_host) == path
    assert _sqlite.backend_url(path) == url


def test_relative_path_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative path is resolved against the current directory, so other processes agree."""
    monkeypatch.chdir(tmp_path)
    assert Path(Connection(_sqlite.broker_url("rel/b.sqlite3")).virtual_host) == (
        tmp_path / "rel" / "b.sqlite3"
    )


def test_register_is_idempotent_and_the_backend_comes_from_the_entry_point() -> None:
    """register() can run repeatedly; Celery finds the backend by its entry point alone."""
    from celery.app.backends import BACKEND_ALIASES, by_url

    from taskqueue_kit._sqlite.backend import SQLiteBackend

    _sqlite.register()
    _sqlite.register()
    assert TRANSPORT_ALIASES["tqsqlite"] == "taskqueue_kit._sqlite.transport:Transport"
    assert "tqsqlite" not in BACKEND_ALIASES  # no Celery internals written to
    backend_cls, _ = by_url("tqsqlite:////tmp/results.sqlite3")
    assert backend_cls is SQLiteBackend


def test_url_without_path_is_refused() -> None:
    """A tqsqlite URL with no file path fails with a message showing the expected form."""
    _sqlite.register()
    with pytest.raises(ValueError, match="tqsqlite:////"):
        Connection("tqsqlite://").connect()


def test_data_directory_is_created_in_wal_mode(home: Path, broker: str) -> None:
    """Connecting creates the missing directory and the database, in WAL mode."""
    with Connection(broker) as conn:
        conn.connect()
    assert rows(home, "PRAGMA journal_mode") == [("wal",)]


def test_fifo_per_queue(broker: str) -> None:
    """Each queue hands out its messages in publish order, whatever other queues hold."""
    with Connection(broker) as conn:
        declare(conn, "a")
        declare(conn, "b")
        for n in range(10):
            publish(conn, "a", f"a{n}")
            publish(conn, "b", f"b{n}")
        channel = conn.channel()
        got_a = [channel.basic_get("a", no_ack=True).payload for _ in range(10)]
        got_b = [channel.basic_get("b", no_ack=True).payload for _ in range(10)]
        assert got_a == [f"a{n}" for n in range(10)]
        assert got_b == [f"b{n}" for n in range(10)]
        assert channel.basic_get("a") is None


def test_higher_priority_first_then_publish_order(broker: str) -> None:
    """priority 0-255, higher first as on RabbitMQ; equal priorities in publish order."""
    with Connection(broker) as conn:
        declare(conn, "p")
        producer = conn.Producer(serializer="json")
        for body, priority in [("low", 0), ("high-1", 9), ("mid", 5), ("high-2", 9), ("odd", 999)]:
            producer.publish(body, routing_key="p", priority=priority)
        channel = conn.channel()
        got = [channel.basic_get("p", no_ack=True).payload for _ in range(5)]
        assert got == ["odd", "high-1", "high-2", "mid", "low"]  # 999 counts as 255


def test_a_requeued_message_keeps_its_priority(broker: str) -> None:
    """A rejected (requeued) high-priority message is still taken before lower ones."""
    with Connection(broker) as conn:
        declare(conn, "rq")
        producer = conn.Producer(serializer="json")
        producer.publish("low", routing_key="rq", priority=1)
        producer.publish("high", routing_key="rq", priority=7)
        channel = conn.channel()
        first = channel.basic_get("rq")
        assert first.payload == "high"
        first.reject(requeue=True)
        assert [channel.basic_get("rq", no_ack=True).payload for _ in range(2)] == ["high", "low"]


def test_an_expired_message_is_never_delivered_and_is_cleaned_up(home: Path, broker: str) -> None:
    """AMQP's per-message ``expiration``: past it the message is skipped, then deleted."""
    with Connection(broker) as conn:
        declare(conn, "ttl")
        producer = conn.Producer(serializer="json")
        producer.publish("short", routing_key="ttl", expiration=0.05)
        producer.publish("kept", routing_key="ttl", expiration=60)
        producer.publish("forever", routing_key="ttl")
        time.sleep(0.2)
        channel = conn.channel()
        got = [channel.basic_get("ttl", no_ack=True).payload for _ in range(2)]
        assert got == ["kept", "forever"]
        assert channel.basic_get("ttl") is None
        producer.publish("gone", routing_key="ttl", expiration=0.01)
        time.sleep(0.05)
        channel._maintain()
        assert rows(home, "SELECT COUNT(*) FROM messages") == [(0,)]


def test_failover_skips_a_broker_that_cannot_be_opened(tmp_path: Path, broker: str) -> None:
    """With failover URLs, a file that cannot be opened is a connection error and the next
    URL is used; no channel of the dead one is handed out afterwards."""
    dead_dir = tmp_path / "dead.sqlite3"
    dead_dir.mkdir()  # a directory: SQLite cannot open it
    dead = _sqlite.broker_url(dead_dir)
    with Connection([dead, broker], failover_strategy="round-robin") as conn:
        conn.ensure_connection(max_retries=2)
        assert Path(conn.transport.db_path) == Path(Connection(broker).virtual_host)
        queue = conn.SimpleQueue("after-failover")
        queue.put({"ok": True})
        message = queue.get(timeout=5)
        assert message.payload == {"ok": True}
        message.ack()
        queue.close()


def test_ack_deletes_and_reject_requeues_or_drops(home: Path, broker: str) -> None:
    """ack deletes; reject(requeue=True) puts it back first in line, redelivered; else drops."""
    with Connection(broker) as conn:
        declare(conn, "q")
        publish(conn, "q", 1, 2, 3)
        channel = conn.channel()
        first = channel.basic_get("q")
        assert first.payload == 1
        assert first.delivery_info["redelivered"] is False
        first.reject(requeue=True)
        again = channel.basic_get("q")
        assert again.payload == 1
        assert again.delivery_info["redelivered"] is True
        again.ack()
        second = channel.basic_get("q")
        second.reject(requeue=False)
        assert channel.basic_get("q").payload == 3
    assert len(rows(home, "SELECT id FROM messages")) == 1  # only the unacked third


def test_close_restores_unacked(broker: str) -> None:
    """Closing a connection gives its unacked messages back to the queue."""
    with Connection(broker) as conn:
        declare(conn, "q")
        publish(conn, "q", "m")
        assert conn.channel().basic_get("q").payload == "m"
    with Connection(broker) as conn:
        message = conn.channel().basic_get("q")
        assert message.payload == "m"
        assert message.delivery_info["redelivered"] is True


def test_expired_claim_is_restored(broker: str) -> None:
    """A claim older than visibility_timeout is handed to another consumer."""
    opts = {"visibility_timeout": 0.2, "polling_interval": 0.05}
    with Connection(broker) as holder, Connection(broker, transport_options=opts) as other:
        declare(holder, "q")
        publish(holder, "q", "slow")
        assert holder.channel().basic_get("q").payload == "slow"
        got: list[object] = []
        with other.Consumer(Queue("q"), callbacks=[lambda body, m: got.append(body)]):
            other.drain_events(timeout=10)
        assert got == ["slow"]


def test_claim_of_dead_process_is_restored(broker: str) -> None:
    """A message claimed by a process that died without acking comes back, marked redelivered."""
    with Connection(broker, transport_options={"polling_interval": 0.05}) as conn:
        declare(conn, "q")
        publish(conn, "q", "orphan")
        assert run_helper("claim_and_die", broker, "q").wait() == 0
        assert conn.channel().basic_get("q") is None  # still claimed by the dead process
        got = []
        with conn.Consumer(Queue("q"), callbacks=[lambda body, m: got.append(m)]):
            conn.drain_events(timeout=10)
        assert [m.payload for m in got] == ["orphan"]
        assert got[0].delivery_info["redelivered"] is True


def test_auto_delete_queue_of_dead_owner_is_dropped(home: Path, broker: str) -> None:
    """An auto-delete queue whose declaring process died is removed with its bindings."""
    assert run_helper("declare_and_die", broker, "gone").wait() == 0
    assert rows(home, "SELECT queue FROM bindings WHERE queue = 'gone'") == [("gone",)]
    with Connection(broker) as conn:
        conn.connect()
        conn.transport._maybe_maintain()
    assert rows(home, "SELECT name FROM queues WHERE name = 'gone'") == []
    assert rows(home, "SELECT queue FROM bindings WHERE queue = 'gone'") == []


def test_two_processes_never_claim_the_same_message(tmp_path: Path, broker: str) -> None:
    """Two processes draining one queue together split it: no message twice, none lost."""
    count = 400
    with Connection(broker) as conn:
        declare(conn, "shared")
        publish(conn, "shared", *range(count))
    outs = [tmp_path / f"out{n}.json" for n in range(2)]
    procs = [run_helper("consume", broker, "shared", str(out)) for out in outs]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    seen = [json.loads(out.read_text()) for out in outs]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(count))
    assert all(s == sorted(s) for s in seen)  # each consumer still sees FIFO order


def test_bindings_are_shared_between_connections(broker: str) -> None:
    """A publisher that never declared the queue routes by bindings another client stored."""
    direct = Exchange("ex-direct", "direct")
    topic = Exchange("ex-topic", "topic")
    with Connection(broker) as consumer_side:
        declare(consumer_side, "by-key", direct, "k1")
        declare(consumer_side, "by-topic", topic, "orders.*")
    with Connection(broker) as publisher_side:  # a fresh transport: no local declarations
        producer = publisher_side.Producer(serializer="json")
        producer.publish("direct", exchange="ex-direct", routing_key="k1")
        producer.publish("lost", exchange="ex-direct", routing_key="nobody")
        producer.publish("topic", exchange="ex-topic", routing_key="orders.new")
    with Connection(broker) as conn:
        channel = conn.channel()
        assert channel.basic_get("by-key", no_ack=True).payload == "direct"
        assert channel.basic_get("by-key") is None
        assert channel.basic_get("by-topic", no_ack=True).payload == "topic"


def test_fanout_reaches_every_current_consumer(broker: str) -> None:
    """A broadcast reaches each consumer bound at the time, and not one that binds later."""
    fan = Exchange("ex-fan", "fanout")
    received: dict[str, list[object]] = {"a": [], "b": [], "late": []}
    with Connection(broker) as a, Connection(broker) as b, Connection(broker) as late:
        consumers = []
        for name, conn in (("a", a), ("b", b)):
            queue = Queue(f"fan-{name}", fan, auto_delete=True)
            collect = received[name].append
            consumer = conn.Consumer(queue, callbacks=[lambda body, m, c=collect: c(body)])
            consumer.consume()
            consumers.append(consumer)
        with Connection(broker) as publisher:
            publisher.Producer(serializer="json").publish("hello", exchange=fan, declare=[fan])
        a.drain_events(timeout=5)
        b.drain_events(timeout=5)
        with (
            late.Consumer(
                Queue("fan-late", fan, auto_delete=True),
                callbacks=[lambda body, m: received["late"].append(body)],
            ),
            pytest.raises(TimeoutError),
        ):
            late.drain_events(timeout=0.3)
        for consumer in consumers:
            consumer.cancel()
    assert received == {"a": ["hello"], "b": ["hello"], "late": []}


def test_size_purge_and_delete(home: Path, broker: str) -> None:
    """size counts ready messages, purge drops them but not claimed ones, delete drops the queue."""
    with Connection(broker) as conn:
        declare(conn, "q", Exchange("ex-q", "direct"), "q")
        publish(conn, "q", 1, 2, 3)
        channel = conn.channel()
        claimed = channel.basic_get("q")
        assert channel.queue_declare("q", passive=True).message_count == 2
        assert channel.queue_purge("q") == 2
        assert rows(home, "SELECT COUNT(*) FROM messages") == [(1,)]
        claimed.ack()
        channel.queue_delete("q")
        assert rows(home, "SELECT COUNT(*) FROM bindings WHERE queue = 'q'") == [(0,)]
        with pytest.raises(conn.channel_errors):
            channel.queue_declare("q", passive=True)


def test_control_ping_reaches_worker(app: Celery) -> None:
    """app.control.ping over the embedded broker gets a reply from a running worker."""
    with start_worker(app, perform_ping_check=False, hostname="pinged@test"):
        replies = app.control.ping(timeout=1)
        assert replies == [{"pinged@test": {"ok": "pong"}}]
        assert app.control.ping(timeout=1) == replies  # the reply queue works again
