// Package har converts HTTP entries to HAR 1.2 (the HTTP Archive format that
// browsers' developer tools import), following
// http://www.softwareishard.com/blog/har-12-spec/.
//
// A Writer writes the file an entry at a time and keeps no reference to an
// entry once Add returns.
package har
