// Package browse is what the commands that serve the UI share for showing
// it: the address a browser can open for a listener, and opening a browser
// on it when there is a display, as the user who ran sudo. It serves
// cmd/sonde and cmd/sonde-demo, and nothing else may import it.
package browse
