package torchbin

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxPickle bounds the size of one pickle (data.pkl, or the legacy main
// pickle). Real state dicts of multi-GB models have pickles of a few MB.
const maxPickle = 64 << 20

// scanPickle reads one pickle, opcode by opcode, from in, and returns its
// bytes, without building any object. It is the gate in front of gopickle:
//
//   - every global the pickle names (GLOBAL, INST, STACK_GLOBAL) must be in
//     allowed, else ErrForbiddenGlobal; STACK_GLOBAL is accepted only when
//     its two operands are strings pushed right before it (as Python's
//     pickler writes it), so the names are known without evaluating
//     anything;
//   - every length argument (strings, bytes, frames) must fit in what is
//     left of max bytes, so no declared size ever causes an allocation;
//   - extension-registry, out-of-band buffer and unknown opcodes are
//     refused, as are zero-length and negative lengths that would make
//     the unpickler misbehave.
//
// It stops after the STOP opcode; bytes after it are not consumed.
func scanPickle(in io.Reader, max int64, allowed func(module, name string) bool) ([]byte, error) {
	br, ok := in.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(in, 64<<10)
	}
	s := &scanner{in: br, max: max, allowed: allowed, memo: map[int64]sval{}}
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.rec.Bytes(), nil
}

type sval struct {
	known bool
	s     string
}

type scanner struct {
	in      *bufio.Reader
	rec     bytes.Buffer
	max     int64
	allowed func(module, name string) bool
	memo    map[int64]sval
	last    [2]sval // the two most recent pushes, when both are strings
}

var errTruncated = fmt.Errorf("%w: the pickle ends early", ErrCorrupt)

func (s *scanner) byte1() (byte, error) {
	if int64(s.rec.Len())+1 > s.max {
		return 0, errTruncated
	}
	b, err := s.in.ReadByte()
	if err != nil {
		return 0, errTruncated
	}
	s.rec.WriteByte(b)
	return b, nil
}

// bytesN reads n bytes after checking that they fit.
func (s *scanner) bytesN(n int64, what string) ([]byte, error) {
	if n < 0 || n > s.max-int64(s.rec.Len()) {
		return nil, fmt.Errorf("%w: the pickle declares a %d-byte %s, past the end of its %d bytes", ErrCorrupt, n, what, s.max)
	}
	start := s.rec.Len()
	if _, err := io.CopyN(&s.rec, s.in, n); err != nil {
		return nil, errTruncated
	}
	return s.rec.Bytes()[start:], nil
}

func (s *scanner) line() (string, error) {
	start := s.rec.Len()
	for {
		b, err := s.byte1()
		if err != nil {
			return "", err
		}
		if b == '\n' {
			return string(s.rec.Bytes()[start : s.rec.Len()-1]), nil
		}
	}
}

// length reads a little-endian length of k bytes (1, 4 or 8).
func (s *scanner) length(k int) (int64, error) {
	b, err := s.bytesN(int64(k), "length")
	if err != nil {
		return 0, err
	}
	switch k {
	case 1:
		return int64(b[0]), nil
	case 4:
		v := binary.LittleEndian.Uint32(b)
		if v > 1<<31-1 {
			return 0, fmt.Errorf("%w: negative length in the pickle", ErrCorrupt)
		}
		return int64(v), nil
	default:
		v := binary.LittleEndian.Uint64(b)
		if v > 1<<62 {
			return 0, fmt.Errorf("%w: a pickle length of %d bytes", ErrCorrupt, v)
		}
		return int64(v), nil
	}
}

func (s *scanner) pushString(v string) { s.last = [2]sval{s.last[1], {known: true, s: v}} }
func (s *scanner) clobber()            { s.last = [2]sval{} }

func (s *scanner) store(idx int64) { s.memo[idx] = s.last[1] }

func (s *scanner) global(module, name string) error {
	if !s.allowed(module, name) {
		return forbidden(module, name)
	}
	s.clobber()
	return nil
}

func (s *scanner) run() error {
	for {
		op, err := s.byte1()
		if err != nil {
			return err
		}
		if err := s.op(op); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
}

var errStop = errors.New("stop")

// op consumes the argument of opcode op and updates the string tracking.
func (s *scanner) op(op byte) error {
	switch op {
	case '.': // STOP
		return errStop
	// opcodes without argument that change the stack
	case '(', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', ')', 'u',
		0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92:
		s.clobber()
	case 0x94: // MEMOIZE: the index is len(memo), as gopickle computes it
		s.store(int64(len(s.memo)))
	case 'p': // PUT
		l, err := s.line()
		if err != nil {
			return err
		}
		i, err := strconv.Atoi(l)
		if err != nil || i < 0 {
			return fmt.Errorf("%w: bad PUT index %q", ErrCorrupt, l)
		}
		s.store(int64(i))
	case 'q': // BINPUT
		n, err := s.length(1)
		if err != nil {
			return err
		}
		s.store(n)
	case 'r': // LONG_BINPUT
		b, err := s.bytesN(4, "memo index")
		if err != nil {
			return err
		}
		s.store(int64(binary.LittleEndian.Uint32(b)))
	case 'g', 'h', 'j': // GET, BINGET, LONG_BINGET
		var i int64
		switch op {
		case 'g':
			l, err := s.line()
			if err != nil {
				return err
			}
			v, err := strconv.Atoi(l)
			if err != nil {
				return fmt.Errorf("%w: bad GET index %q", ErrCorrupt, l)
			}
			i = int64(v)
		case 'h':
			n, err := s.length(1)
			if err != nil {
				return err
			}
			i = n
		default:
			b, err := s.bytesN(4, "memo index")
			if err != nil {
				return err
			}
			i = int64(binary.LittleEndian.Uint32(b))
		}
		if v, ok := s.memo[i]; ok && v.known {
			s.pushString(v.s)
		} else {
			s.clobber()
		}
	case 0x80: // PROTO
		if _, err := s.bytesN(1, "protocol"); err != nil {
			return err
		}
	case 0x95: // FRAME: frames are transparent to the opcode stream
		n, err := s.length(8)
		if err != nil {
			return err
		}
		if n > s.max-int64(s.rec.Len()) {
			return fmt.Errorf("%w: the pickle declares a %d-byte frame, past its end", ErrCorrupt, n)
		}
	case 'F', 'I', 'L', 'S', 'V', 'P': // FLOAT, INT, LONG, STRING, UNICODE, PERSID: one line
		if _, err := s.line(); err != nil {
			return err
		}
		s.clobber()
	case 'J': // BININT
		if _, err := s.bytesN(4, "int"); err != nil {
			return err
		}
		s.clobber()
	case 'K': // BININT1
		if _, err := s.bytesN(1, "int"); err != nil {
			return err
		}
		s.clobber()
	case 'M': // BININT2
		if _, err := s.bytesN(2, "int"); err != nil {
			return err
		}
		s.clobber()
	case 'G': // BINFLOAT
		if _, err := s.bytesN(8, "float"); err != nil {
			return err
		}
		s.clobber()
	case 0x8a, 0x8b: // LONG1, LONG4
		k := 1
		if op == 0x8b {
			k = 4
		}
		n, err := s.length(k)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: a zero-length LONG in the pickle", ErrUnsupported)
		}
		if _, err := s.bytesN(n, "integer"); err != nil {
			return err
		}
		s.clobber()
	case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8: strings
		k := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8}[op]
		n, err := s.length(k)
		if err != nil {
			return err
		}
		b, err := s.bytesN(n, "string")
		if err != nil {
			return err
		}
		s.pushString(string(b))
	case 'T', 'U', 'B', 'C', 0x8e, 0x96: // BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
		k := map[byte]int{'T': 4, 'U': 1, 'B': 4, 'C': 1, 0x8e: 8, 0x96: 8}[op]
		n, err := s.length(k)
		if err != nil {
			return err
		}
		if _, err := s.bytesN(n, "byte string"); err != nil {
			return err
		}
		s.clobber()
	case 'c', 'i': // GLOBAL, INST
		module, err := s.line()
		if err != nil {
			return err
		}
		name, err := s.line()
		if err != nil {
			return err
		}
		return s.global(module, name)
	case 0x93: // STACK_GLOBAL
		if !s.last[0].known || !s.last[1].known {
			return fmt.Errorf("%w: the pickle computes the name of a global (STACK_GLOBAL on values not written right before it)", ErrForbiddenGlobal)
		}
		return s.global(s.last[0].s, s.last[1].s)
	case 0x82, 0x83, 0x84: // EXT1, EXT2, EXT4
		return fmt.Errorf("%w: the pickle loads a global from the copyreg extension registry (opcode 0x%x)", ErrForbiddenGlobal, op)
	case 0x97, 0x98: // NEXT_BUFFER, READONLY_BUFFER
		return fmt.Errorf("%w: out-of-band pickle buffers (opcode 0x%x)", ErrUnsupported, op)
	default:
		return fmt.Errorf("%w: unknown pickle opcode 0x%02x at byte %d", ErrCorrupt, op, s.rec.Len()-1)
	}
	return nil
}

// forbidden is the error for a global outside the allow-list. Python
// pickles os.system as posix.system (nt.system on Windows) and, at
// protocol 2, builtins as __builtin__: the message gives the usual name too.
func forbidden(module, name string) error {
	what := module + "." + name
	alias := map[string]string{"posix": "os", "nt": "os", "__builtin__": "builtins", "_subprocess": "subprocess"}[module]
	if alias != "" {
		what += " (" + alias + "." + name + ")"
	}
	return fmt.Errorf("%w: the pickle references %s, which a PyTorch state dict never needs (nothing was executed)", ErrForbiddenGlobal, what)
}
