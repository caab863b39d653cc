// Package har converts HTTP entries to HAR 1.2 (the HTTP Archive format that
// browsers' developer tools import), following
// http://www.softwareishard.com/blog/har-12-spec/.
//
// Build is a pure function; it keeps references to the entries' byte slices
// only until it returns.
package har
