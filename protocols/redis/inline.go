package redis

// splitInline splits an inline command into arguments the way Redis does
// (sdssplitargs): blanks separate arguments; "double quotes" take \xHH, \n,
// \r, \t, \b, \a and \<any> escapes; 'single quotes' take \'; a closing
// quote must be followed by a blank or the end. When the quotes do not
// balance, Redis refuses the line; splitInline then returns the blank
// separated words and false, so that the command can still be shown.
func splitInline(line []byte) ([][]byte, bool) {
	// Redis reads the line as a C string: a NUL ends it.
	for i, c := range line {
		if c == 0 {
			line = line[:i]
			break
		}
	}
	var args [][]byte
	p := 0
	for {
		for p < len(line) && isBlank(line[p]) {
			p++
		}
		if p == len(line) {
			return args, true
		}
		var cur []byte
		inDouble, inSingle := false, false
	token:
		for ; p < len(line); p++ {
			c := line[p]
			switch {
			case inDouble:
				switch {
				case c == '\\' && p+3 < len(line) && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
					cur = append(cur, unhex(line[p+2])<<4|unhex(line[p+3]))
					p += 3
				case c == '\\' && p+1 < len(line):
					p++
					cur = append(cur, unescape(line[p]))
				case c == '"':
					if p+1 < len(line) && !isBlank(line[p+1]) {
						return fields(line), false
					}
					p++
					inDouble = false
					break token
				default:
					cur = append(cur, c)
				}
			case inSingle:
				switch {
				case c == '\\' && p+1 < len(line) && line[p+1] == '\'':
					p++
					cur = append(cur, '\'')
				case c == '\'':
					if p+1 < len(line) && !isBlank(line[p+1]) {
						return fields(line), false
					}
					p++
					inSingle = false
					break token
				default:
					cur = append(cur, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t':
					break token
				case '"':
					inDouble = true
				case '\'':
					inSingle = true
				default:
					cur = append(cur, c)
				}
			}
		}
		if inDouble || inSingle {
			return fields(line), false
		}
		if cur == nil {
			cur = []byte{}
		}
		args = append(args, cur)
	}
}

// fields splits on blanks only, for a line whose quotes do not balance.
func fields(line []byte) [][]byte {
	var out [][]byte
	start := -1
	for i, c := range line {
		if isBlank(c) {
			if start >= 0 {
				out = append(out, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, line[start:])
	}
	return out
}

func isBlank(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
