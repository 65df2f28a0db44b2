#!/usr/bin/python3
"""Run a command in a pseudo-terminal, as a person at a terminal would, and
print what the screen shows at the end (a pyte terminal emulator reads every
byte it wrote), as one JSON document on stdout.

  pty_screen.py [--cols N --rows N] [--no-size] [--ctrl-c-after REGEX]
                [--timeout S] -- COMMAND ARGS...

--no-size leaves the terminal's window size at 0x0, as some terminals and
serial consoles report it (the screen is still emulated at --cols x --rows).
--ctrl-c-after types Ctrl-C (byte 0x03, so the terminal driver sends SIGINT
to the foreground process group) once the output matches REGEX.
"""
import argparse
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pyte


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--cols', type=int, default=100)
    p.add_argument('--rows', type=int, default=200)
    p.add_argument('--no-size', action='store_true')
    p.add_argument('--ctrl-c-after')
    p.add_argument('--timeout', type=float, default=120)
    p.add_argument('command', nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == '--' else a.command

    master, slave = os.openpty()
    if not a.no_size:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', a.rows, a.cols, 0, 0))

    def child_setup():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = dict(os.environ)
    env.pop('CI', None)
    env['TERM'] = 'xterm-256color'
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, preexec_fn=child_setup, env=env, close_fds=True)
    os.close(slave)

    screen = pyte.Screen(a.cols, a.rows)
    stream = pyte.ByteStream(screen)
    raw = bytearray()
    sent = False
    deadline = time.time() + a.timeout
    timed_out = False
    while True:
        if time.time() > deadline:
            timed_out = True
            proc.kill()
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b''
            if not data:
                break
            raw += data
            stream.feed(data)
            if a.ctrl_c_after and not sent and re.search(a.ctrl_c_after, raw.decode('utf-8', 'replace')):
                os.write(master, b'\x03')
                sent = True
        elif proc.poll() is not None:
            # Drain what is left, then stop.
            r, _, _ = select.select([master], [], [], 0.2)
            if not r:
                break
    code = proc.wait()
    os.close(master)
    print(json.dumps({
        'code': code if code >= 0 else 128 - code,
        'timedOut': timed_out,
        'ctrlC': sent,
        'screen': [line.rstrip() for line in screen.display],
        'cursorHidden': bool(screen.cursor.hidden),
        'raw': raw.decode('utf-8', 'replace'),
    }))


if __name__ == '__main__':
    main()
