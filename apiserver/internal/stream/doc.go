// Package stream fans live entries out to browser websockets.
//
// A Broker holds the subscribers. Publish, called by ingest after the entries
// are stored, evaluates each subscriber's compiled query and offers the
// matching entries to its bounded queue without ever blocking: when a queue is
// full the entry is counted as lost for that subscriber, so a slow browser
// costs the hub nothing and delays no other client.
//
// A Session owns one websocket. It is the connection's only writer: it sends
// the matching history first (oldest to newest), then queued live entries, a
// "lost N" notice before the next entry whenever entries were dropped, a stats
// message every StatsPeriod, and pings; a second goroutine only reads (pongs,
// the close frame). History and live entries never overlap or leave a hole:
// the subscription is registered first, then the newest stored sequence number
// S is read; history is what the store holds up to S, and the live queue
// skips anything up to S.
//
// Items are shared between subscribers and must not be modified.
package stream
