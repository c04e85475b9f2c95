// Tests for the answered-bits window of the UDP probe's sessions: duplicates are recognised over
// the whole window, a number's bit is cleared when it is sent again after wrapping the ring, and
// the u32 sequence wraps.

import test from 'ava';
import { AnsweredWindow } from './answered-window.ts';

test('an answered number is remembered until `size` newer numbers were sent', (t) => {
  const w = new AnsweredWindow(64);
  for (let s = 0; s < 10; s++) w.sent(s);
  w.markAnswered(3);
  t.true(w.answered(3));
  t.false(w.answered(4));
  for (let s = 10; s < 67; s++) w.sent(s);
  t.true(w.answered(3), 'age 64: still inside');
  w.sent(67);
  t.false(w.answered(3), 'age 65: out of the window');
  t.false(w.holds(3));
  // Number 3 + 64 = 67 reused 3's bit and starts unanswered.
  t.false(w.answered(67));
});

test('numbers not sent yet or outside the window are neither held nor marked', (t) => {
  const w = new AnsweredWindow(32);
  for (let s = 0; s < 100; s++) w.sent(s);
  t.false(w.holds(100), 'not sent yet');
  t.false(w.holds(67), 'age 33');
  t.true(w.holds(68));
  w.markAnswered(100);
  w.markAnswered(36);
  // 100 and 36 share their bit with 68 (mod 32): neither mark may set it.
  t.false(w.answered(68));
  w.sent(100);
  t.false(w.answered(100));
});

test('the u32 sequence number wraps', (t) => {
  const w = new AnsweredWindow(32);
  for (let s = 0xffff_fff0; s <= 0xffff_ffff; s++) w.sent(s);
  for (let s = 0; s < 5; s++) w.sent(s);
  w.markAnswered(0xffff_fffe);
  w.markAnswered(2);
  t.true(w.answered(0xffff_fffe));
  t.true(w.answered(2));
  t.false(w.answered(0xffff_ffff));
  t.is(w.age(0xffff_fffe), 7);
});

test('the size must be a power of two of at least 32', (t) => {
  t.throws(() => new AnsweredWindow(48), { instanceOf: RangeError });
  t.throws(() => new AnsweredWindow(16), { instanceOf: RangeError });
  t.notThrows(() => new AnsweredWindow(4096));
});
