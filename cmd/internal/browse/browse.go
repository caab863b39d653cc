package browse

import (
	"fmt"
	"html"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Addr turns a listening address into one a browser can open.
func Addr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return fmt.Sprintf("localhost:%d", tcp.Port)
}

// Open opens url with xdg-open when there is a display to open it on, as
// the user who ran sudo (browsers refuse to run as root); without either,
// the printed URL is all there is. It says on out when it opened one.
//
// The URL carries the session's token, and a command line is readable by
// every local user (ps), so the browser is handed a file instead: a page,
// readable by the user alone, that sends it on to url (as Jupyter does).
func Open(url string, out io.Writer) {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return
	}
	path, err := exec.LookPath("xdg-open")
	if err != nil {
		return
	}
	owner := -1
	var cred *syscall.Credential
	var env []string
	if u, err := user.LookupId(os.Getenv("SUDO_UID")); err == nil {
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		owner = int(uid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		env = append(os.Environ(), "HOME="+u.HomeDir, "USER="+u.Username)
	}
	page, err := redirectPage(url, owner)
	if err != nil {
		return
	}
	c := exec.Command(path, page)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	c.Env = env
	if err := c.Start(); err != nil {
		os.RemoveAll(filepath.Dir(page))
		return
	}
	fmt.Fprintln(out, "opening it in your browser")
	go func() {
		c.Wait() // xdg-open returns once the browser has the page
		time.Sleep(redirectKept)
		os.RemoveAll(filepath.Dir(page))
	}()
}

// redirectKept is how long the redirect page outlives xdg-open, for a
// browser that reads it only once it has started.
const redirectKept = time.Minute

// redirectPage writes a page that sends the browser on to url, in a
// directory of its own that only the user (owner, when not -1) may enter,
// and returns its path.
func redirectPage(url string, owner int) (string, error) {
	dir, err := os.MkdirTemp("", "sonde-open-")
	if err != nil {
		return "", err
	}
	page := filepath.Join(dir, "open.html")
	u := html.EscapeString(url)
	body := "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url=" + u + "\">" +
		"<title>Sonde</title><p><a href=\"" + u + "\">Open Sonde</a></p>\n"
	if err := os.WriteFile(page, []byte(body), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if owner >= 0 {
		for _, p := range []string{dir, page} {
			if err := os.Chown(p, owner, -1); err != nil {
				os.RemoveAll(dir)
				return "", err
			}
		}
	}
	return page, nil
}
