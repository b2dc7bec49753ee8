// Package faults is concord's fault suite: it runs the real `concord run` binary as
// child processes against an in-process Kafka broker (kfake, the real protocol on
// 127.0.0.1) and a real redis-server with AOF, with the strict simulated systems of
// internal/sim editing at a moderate rate, injects faults, and then checks the
// outcome against what the simulated users really did.
//
// Faults: SIGKILL of an instance at a random moment; SIGKILL inside a batch, while
// its Redis write is held by CLIENT PAUSE WRITE (or as soon as its applies appear
// while writes are held) and the instant its apply events appear with the offset
// commit delayed; redis-server stopped (SIGTERM or SIGKILL) and started again on its
// port and directory; broker error codes on Produce, Fetch and OffsetCommit and cut
// connections (kfake faults and control functions, on concord's requests only); in a
// group of three, SIGSTOP freezes longer than the session timeout (the zombie must be
// fenced), joins and leaves; a sink task restart that redelivers.
//
// Checks, once the edits stop and the sync is quiet: convergence outside the DLQ;
// every user edit (each writes a value never used before) is final in every system,
// superseded by a later user edit, or lost by a recorded conflict decision, and
// anything else is a lost edit; no concord event id produced with two contents; the
// recovery time of each fault. Run runs one Scenario; Soak runs the mix for a while.
//
// The package works on Linux (it maps Redis clients to processes through /proc);
// elsewhere the in-batch kill cannot tell which instance holds a write.
package faults
