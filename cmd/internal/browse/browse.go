package browse

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
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
func Open(url string, out io.Writer) {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return
	}
	path, err := exec.LookPath("xdg-open")
	if err != nil {
		return
	}
	c := exec.Command(path, url)
	if u, err := user.LookupId(os.Getenv("SUDO_UID")); err == nil {
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		c.Env = append(os.Environ(), "HOME="+u.HomeDir, "USER="+u.Username)
	}
	if err := c.Start(); err != nil {
		return
	}
	fmt.Fprintln(out, "opening it in your browser")
	go c.Wait() // xdg-open returns once the browser has the URL
}
