// The request/reply protocol of the gateway tests, shared by the guests
// (gw_server.c, gw_client.c), the native load client (load_client.c) and
// gateway_tests.py. Every request carries a sequence number; every reply
// and body byte is a function of it, so any byte lost, duplicated or
// reordered shows.
//
//   REQ <seq> <reply_size> <body_len>\n  <body_len body bytes>
//        -> REP <seq> <reply_size>\n  <reply_size reply bytes>
//   STAT <seq>\n
//        -> STAT <seq> <bytes received> <bytes sent>\n
//           (the server's counts on this connection: received up to and
//           including this request, sent before this reply)
//   PEER <seq>\n -> PEER <seq> <address the server sees>\n
#pragma once

#include <stdint.h>

static inline uint8_t gw_body_byte(uint64_t seq, uint64_t i) {
  return (uint8_t)(seq * 31u + i * 7u + 1u);
}

static inline uint8_t gw_reply_byte(uint64_t seq, uint64_t i) {
  return (uint8_t)(seq * 13u + i * 5u + 3u);
}
