// Package notify turns the durable, de-duplicated event log that
// monitors keep in JetStream (monitor --events-stream) into notifications
// that happen once: the hook, webhook or Alertmanager alert of each
// transition, whichever monitors reported it and however many notify
// workers run.
//
// # Exactly once, as far as it goes
//
// Monitors publish each transition with a Nats-Msg-Id derived from it, so
// the stream keeps one record per transition however many monitors
// report it (within the stream's duplicate window, 2 minutes). A monitor
// that reports later (after a NATS outage of its own, or restarted from
// restart memory with an older view of a peer that died meanwhile) adds a
// record; before it acts, a Notifier asks the stream, with a direct get,
// what it held about the peer before the record, and acknowledges without
// output a record that is no news. Each
// output (hook, webhook, Alertmanager) reads the stream through a durable
// consumer of its own, shared by every [Notifier] with the same Consumer
// name: the server gives each event to one of them. An event is
// acknowledged only after its output succeeded, and the server confirms
// the ack before the next event is taken. On failure it is delivered
// again after a backoff, up to MaxDeliver times, then given up on
// (counted and logged). While a worker handles an event it tells the
// server so every AckWait/4 and waits for the server to confirm; a
// worker that dies stops, and the event goes to another worker (or to the
// restarted one) after AckWait.
//
// A hook dies with its worker: its whole process group is killed when the
// worker's process ends, even by SIGKILL (see [events.Hook]), and when the
// worker, alive but cut off from the server, has had nothing confirmed
// for 3/4 of AckWait, before the server can hand the event on. So a hook
// cannot finish its work after the event was handed to another worker.
// What remains is the moment between a hook's success and the server's
// confirmation of the ack: a worker killed exactly then has done the work
// and the event is delivered again. HBMESH_EVENT_ID (the same for every
// delivery) and HBMESH_DELIVERY let a hook that must never repeat itself
// check. A worker that is frozen (SIGSTOP, a VM pause) rather than killed
// for longer than AckWait also loses its event to another worker and may
// then finish it too.
//
// # Order
//
// With MaxAckPending 1, the default, an output handles one event at a
// time across all workers, in stream order: a peer's recovery never
// overtakes its death. An event whose output keeps failing holds back
// the events behind it for that output until it succeeds or is given up.
//
// # Wiring
//
//	n, _ := notify.New(nc, cfg)
//	err := n.Run(ctx) // until ctx is done
//
// Run returns once every goroutine it started has exited.
//
// # Metrics and readiness
//
// [Notifier.Stats] counts what became of each output's events, and
// [Notifier.Collector] exports the counts to Prometheus as
// hbmesh_notify_events_total{output, result} and
// hbmesh_notify_retries_total{output}, next to
// hbmesh_notify_build_info. [Notifier.Ready] says whether the consumers
// are bound and NATS is connected. httpapi.Metrics serves both.
package notify
