// Package stream fans live entries out to browser websockets.
//
// A Broker holds the subscribers. Publish, called by ingest right after a
// batch is stored (under the store's write lock, so batches arrive in
// sequence order), only appends the batch to each subscriber's bounded queue
// of published batches; it never matches and never blocks. Each subscriber
// has its own goroutine that takes batches from that queue, evaluates its
// compiled query, and offers the matches to its bounded queue of entries to
// send. When either queue is full the entries are counted as lost for that
// subscriber (a batch dropped unread counts all its entries, matching or
// not), so a slow browser or an expensive query costs the hub's ingest
// nothing and delays no other client.
//
// A Session owns one websocket. It is the connection's only writer: it sends
// the matching history first (oldest to newest), then queued live entries, a
// "lost N" notice before the next entry whenever entries were dropped, a stats
// message every StatsPeriod, and pings; a second goroutine only reads (pongs,
// the close frame). History and live entries never overlap or leave a hole:
// Subscribe registers the subscription first, then reads the newest stored
// sequence number S (before any batch published meanwhile is judged);
// history is what the store holds up to S, and the subscriber's goroutine
// skips anything up to S.
//
// Goroutines: per session, the one that called Run (the only writer), a
// reader, and the subscription's matcher, which Unsubscribe stops.
//
// Items are shared between subscribers and must not be modified.
package stream
