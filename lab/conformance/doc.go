// Package conformance checks Sonde's dissection of real captures from other
// projects against Wireshark's (tshark's) dissection of the same files.
//
// The captures and tshark's output live outside the repository, in
// ../shared/corpus beside the checkout (or where SONDE_CORPUS points). The
// tests read them in place; when the folder is absent they say so in one line
// and do not run. Each protocol's test compares what a user would compare:
// the same exchanges, in the same order per connection, with the same
// method, target and status. Where Sonde and tshark disagree and Sonde is
// right (or tshark sees what Sonde cannot), the case is listed with its
// reason in that protocol's test, and the test fails if the difference ever
// goes away, so the list stays true.
package conformance
