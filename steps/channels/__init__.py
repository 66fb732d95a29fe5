"""Channels, the only mutable pointers, and how concurrent writers move them safely.

Modules: :mod:`.rules` (pure decisions: move, no-op or refuse; the winner rule),
:mod:`.audit` (move records, the per-channel index, refresh records), :mod:`.releases`
(reading releases, completeness), :mod:`.move` (the registry I/O around them:
:func:`~.move.move_channel`, :func:`~.move.reconcile`, :func:`~.move.rollback_channel`),
:mod:`.statement` (pure rules of the signed channel statements), :mod:`.vouch` (their
registry I/O), :mod:`.refresh` (``channel refresh``), :mod:`.timing` (the protocol's clock
and settle) and :mod:`.immutable` (pushing ``:<version>``).

The protocol
============

OCI tags are last-writer-wins: there is no compare-and-swap, and a PUT can be delayed for
any time (a proxy, a retry, a slow link) and land after later writes. So nothing here
relies on the order in which tag writes land. Three kinds of objects, all in
``<namespace>/alga-appliance-release``:

- ``:move.<channel>.<stamp>.<random>``: one **record** per move, written *before* the channel
  tag moves; a tag no one else writes, so records are never lost. A record is the writer's
  claim; it names the target release, what the writer saw (``from``, ``base``: the index
  entry it saw as current) and its ``era`` (the number of reasoned downgrades before it).
- ``:history.<channel>``: the **index**, the history of moves that took effect (the last
  100 to 199 of them, plus a pointer to archived pages of 100). It is rewritten on every
  move and is last-writer-wins too: a cache of the records, rebuilt from them when a
  writer finds it out of date.
- ``:<channel>``: the **channel** itself, re-put with the release manifest's exact bytes.

**The winner rule** (:func:`.rules.beats`): of two moves, the one of the later era wins; in
one era, the newer SemVer version wins; a downgrade (asked for with a reason, rollbacks
included) wins only over the very move it was decided against (its ``base``). A function of
the records alone, independent of arrival order: every writer that sees the same records
computes the same current move (:func:`.rules.reconcile` folds them in a fixed order).

**A move**, by one writer (:func:`.move.move_channel`):

1. gates that need no channel state: the release is readable, valid and complete;
2. read the channel and the index (the clock starts), decide (:func:`.rules.plan_move`):
   no-op, refuse (a downgrade without a reason, an unreadable current release; the
   index's current move counts, so a move recorded but not yet on the tag is not
   downgraded silently), or move;
3. write the record, then the index with the record folded in, then the channel;
4. wait the **settle** (``--settle``, ``ALGA_SETTLE``, default 1 s) and read the channel
   and the index back;
5. **fast path**: if everything in 2-3 was answered within the settle and the read-back
   shows exactly this writer's channel and index bytes, the move stands: exit 0;
6. **slow path** (:func:`.move.reconcile`) otherwise: list the record tags, read the records
   stamped since the first read (less the settle and two minutes of clock skew) that the
   index lacks, fold them onto the index by the winner rule, write the index and re-put the
   winner's bytes on the channel where they differ, settle, read back; repeat until a round
   has nothing to write, or its writes were quick and read back intact (at most six rounds,
   then exit 75). Exit 0 if this writer's move is the current one, or took effect and was
   superseded by a strictly newer release (``supersededBy`` says which); else exit 3
   (:class:`~steps.errors.ConcurrentMove`), the channel left at the winner.

Why the fast path is safe: suppose writer W exits 0 on the fast path and a write of writer
L lands after W's read-back. W's writes applied at most ``settle`` before W's read-back,
so L's write landed more than ``settle`` after W's index write. L read the index before
W's index write applied (had it read after, it would have decided with W's record as its
base: then L's move is either refused as a downgrade or strictly newer), so from L's
first read to its write's answer more than ``settle`` passed, and L takes the slow path:
it lists the records, finds W's, and puts W's move back if W wins (or supersedes it with
a strictly newer release). Of two writers that overlap, at most one can see its own bytes
at its read-back after the other's landed; the other reconciles. The slow path keeps every
entry the index holds as it stands (:func:`.rules.race_view`): an entry there may be one
its writer has already read back and reported, as W's, so a newer release supersedes it
in the history and never erases it. Only the records the index lacks, and the reconciling
writer's own entry when it is the index's last (nobody built on it, and its writer, still
deciding, has reported nothing), are folded as the race.

What holds, under any interleaving of writers (two, three, more), delayed PUTs and writers
killed at any point, provided a registry read reflects every write answered before it
started and writers' clocks agree within two minutes:

- a writer exits 0 only if, when it ends, its move stands or a strictly newer complete
  release superseded it on that channel;
- a channel never ends at an older release than one a writer reported as moved, unless a
  downgrade was asked for with a reason;
- every move has exactly one record; the move that stands is the index's current entry, and
  no entry is in the index twice; a move that lost a race to a newer one decided without
  seeing it, before its writer could report it, is left out of the index (its writer was
  told), its record kept;
- ``rollback`` records what it undid; repeated with the channel already there it is a no-op.

The one case a writer cannot repair itself: a write still in flight when its writer is
killed, landing after the other writers finished (the channel then disagrees with its
index's current move). The next move of that channel repairs it: moving to the index's
current release completes it (``plan_move``'s ``complete``), any newer move overwrites it,
and an older one is refused naming the in-flight move.

Statements
==========

With a signing key (an :class:`~.vouch.Issuer`), a fourth object follows the channel:
``:statement.<channel>``, the **signed channel statement** (:mod:`.statement`): channel,
version, release manifest digest, a ``sequence`` that only grows, ``issuedAt`` and
``expiresAt``, signed in cosign's format. Appliances that verify (the consume library with
trusted keys) follow ``:<channel>`` only while its statement vouches for the digest the tag
resolves to, with a sequence not below one they saw, unexpired. So someone with push
rights but not the key cannot re-tag a channel at an older signed release, replay an older
channel state, or freeze one: each is refused. Without a signing key no statement is
written (a warning says so): appliances that verify then refuse the channel, so a publisher
whose appliances verify must sign every move.

**The order of a move** (publish's channel step, ``promote``, ``rollback``): the release is
complete and signed (the signature gate) → the statement is pushed and signed → the tag
moves → read back. In detail, before the timed part of step 2 above, the writer reads the
channel and its index (refusing early what the gates would refuse), reads the statement
(:func:`~.vouch.read_statement`) and, unless it already vouches for the target, *stages*
the next one: config blob, manifest PUT by digest, signature ``sha256-<hex>.sig`` -- none
of which any reader sees. The next sequence is one above the current statement's and above
every ``statementSequence`` the history records (each move record carries the sequence its
statement has, written before the statement, so a lost or untrusted statement tag cannot
lower it); ``issuedAt`` is the move's clock in whole UTC seconds, ``expiresAt`` is
``issuedAt + --statement-expiry`` (``ALGA_STATEMENT_EXPIRY``, default 30 days). Then step 3
becomes: record, index, **statement tag** (one PUT, after a HEAD that checks no other
statement landed since it was read), channel tag; and the read-back checks the statement
tag too. The fast path needs all of them to be this writer's.

**Two writers.** The slow path's reconcile settles the tag and the index as before; then
the writer makes the statement follow the move that stands (:func:`~.vouch.follow_winner`):
it keeps a statement that vouches for the winner, or stages and tags the next one (after
the signature gate on the winner's release: a writer never vouches for a release that is
not signed by a trusted key), settles and reads it back, for up to six rounds (then exit
75). A writer that took the slow path because another writer's record showed up re-issues
even its own statement for the winner: its statement may have landed late on a newer one
with a higher sequence. By the fast path's argument (a late statement PUT means a slow
writer, which reconciles), when every writer has finished, the statement vouches for the
channel's final digest -- provided the writer that ends last on the slow path has the key.
What remains: while a move is between its statement and its tag, or a slow path between
its tag and its statement, appliances that verify see a mismatch and stay where they are
(fail closed, exit 3 on their side); and the final statement's sequence can be below one
that stood for a moment during the race (a writer that saw it refuses the final one as a
replay until the next move or refresh). Writers with and without the key on one channel:
whenever a keyless move stands, the channel has no statement for it.

**Intermediate states**, as ``verify`` and ``history`` report them
(:func:`~.statement.agreement`), and how each is finished:

- killed after the record (or the index), before the statement: the tag and its statement
  still agree, the history's current move goes elsewhere: ``behind``
  (:class:`~steps.errors.ChannelBehind`); appliances are unaffected; the same move again
  completes it (``plan_move``'s ``complete``: statement, then tag);
- killed after the statement, before the tag: **statement ahead of channel**
  (``statement-ahead``, :class:`~steps.errors.StatementAhead`: the statement names X, the
  tag is still at Y, where the history's current move came from); appliances that verify
  refuse (``StatementDigestMismatch``) and stay on what they have; the same move again puts
  the tag and keeps the statement: nothing else changes (no new tag, record or statement);
- killed after the tag, before the read-back: nothing to finish;
- a move without a signing key, or a re-tag by someone without the key: **channel ahead of
  statement** (``channel-ahead``; ``missing`` when there is no statement at all; both
  :class:`~steps.errors.ChannelAhead`): the message says whether a recorded move leads
  there (re-run it with the key: ``plan_move``'s ``noop`` or ``record`` then issues the
  statement and moves nothing) or none does (a re-tag: promote the vouched-for release to
  put it back);
- an older statement put back with its release: ``behind`` or ``replayed``
  (:class:`~steps.errors.StatementReplayed`: a sequence below one the history records);
  a move or ``channel refresh`` re-issues above it;
- expired (``expired``): ``channel refresh`` re-issues it; unsigned or by an untrusted key
  (``untrusted``): a move of the current version with the key re-issues it.

``channel refresh`` (:mod:`.refresh`) re-issues the current statement with the next
sequence and a new expiry and writes nothing the move protocol settles (not the tag, not
``history.<channel>``): its records are ``refresh.<channel>.<stamp>.<random>`` and its own
index ``refreshes.<channel>`` (the last 100). It stages, checks, tags, settles and reads
back like a move, and follows a move that landed meanwhile.

``:<version>`` (and other immutable tags) is pushed by :func:`.immutable.put_immutable`:
a claim tag per content, then the tag, a settle, a read-back; a slow push yields to a
confirmed one and puts its bytes back (exit 3, :class:`~steps.errors.ImmutableTagOverwritten`).
So once a writer exits 0 for a version (or a channel points at it), its digest stays.

Cost
====

A move on the fast path: the reads of step 2 (five requests: channel HEAD, its release
manifest and config, index manifest and config), the record (about five: blob checks and
uploads, a HEAD of the target, the manifest PUT), the index (about three), the channel PUT,
and the read-back (three): about 17 requests and one settle. The slow path adds a tag
listing, two requests per record found and a settle per round. ``history``, ``rollback``
and the gates read the index (two requests) whatever the length of the history; the full
history of N moves costs two more per 100. Figures measured on loopback are in the README.
"""
