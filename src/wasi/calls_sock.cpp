// The preview1 socket calls: accept on a listening socket (--listen, or one
// the guest made with the socket extension), and recv / send / shutdown on
// connected ones. Blocking ones wait with poll so that a checkpoint request
// interrupts them before any byte is consumed.
#include "wasi/blocking.h"
#include "wasi/calls.h"
#include "wasi/posix_errno.h"
#include "wasi/socket.h"

#include <cerrno>
#include <sys/socket.h>

namespace tern::wasi::calls {
namespace {

// A socket that carries data: connected TCP, UDP, or a TCP socket the
// guest opened (the kernel says whether it is connected).
Errno stream_socket(Call& c, uint32_t fd, Rights needed, FdEntry*& out) {
  WASI_TRY(get_socket(c, fd, needed, out));
  if (out->kind == FdKind::TcpListener) return Errno::notsock;
  return settle_connect(*out, c.ctx.gateway_link());
}

// A connection on a published listener comes from the gateway, which says
// first which of its clients it carries.
GatewayLink::Offer take_gateway_offer(Call& c, FdEntry& entry) {
  GatewayLink* link = c.ctx.gateway_link();
  if (!link) return GatewayLink::Offer::Rejected;
  auto g = std::make_unique<GatewayStream>();
  SocketAddress peer;
  GatewayLink::Offer offer = link->take_offer(entry.host.get(), c.interrupt, *g, peer);
  if (offer == GatewayLink::Offer::Accepted) {
    entry.gateway = std::move(g);
    entry.socket->peer = peer;
  }
  return offer;
}

} // namespace

Ret sock_accept(Call& c, uint32_t fd, uint32_t flags, uint32_t fd_out) {
  FdEntry* listener;
  WASI_TRY(c.ctx.fds().get(fd, right::sock_accept, listener));
  if (listener->kind != FdKind::TcpListener) return Errno::notsock;
  if (flags & ~uint32_t(fdflag::nonblock)) return Errno::inval;
  if (!c.mem.in_bounds(fd_out, 4)) return Errno::fault;
  for (;;) {
    int conn = ::accept4(listener->host.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn >= 0) {
      FdEntry entry = stream_entry(util::UniqueFd(conn), uint16_t(flags));
      if (listener->published) {
        switch (take_gateway_offer(c, entry)) {
        case GatewayLink::Offer::Accepted:
          break;
        case GatewayLink::Offer::Rejected: // not from the gateway: closed; the next one
          continue;
        case GatewayLink::Offer::Interrupted: // closed: the gateway offers it again
          return Ret::suspend();
        }
      }
      uint32_t new_fd;
      WASI_TRY(c.ctx.fds().insert(std::move(entry), new_fd));
      return c.mem.store<uint32_t>(fd_out, new_fd);
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN) return last_errno();
    Wait w = wait_ready(c, *listener, POLLIN, listener->recv_timeout_us());
    if (w == Wait::Interrupted) return Ret::suspend();
    if (w == Wait::NotReady) return Errno::again;
  }
}

Ret sock_recv(Call& c, uint32_t fd, uint32_t ri_data, uint32_t ri_data_len, uint32_t ri_flags,
              uint32_t ro_datalen_out, uint32_t ro_flags_out) {
  FdEntry* e;
  WASI_TRY(stream_socket(c, fd, right::fd_read, e));
  if (ri_flags & ~uint32_t(riflag::recv_peek | riflag::recv_waitall)) return Errno::inval;
  auto& iov = c.ctx.iov_scratch();
  WASI_TRY(c.mem.iovecs(ri_data, ri_data_len, iov, GuestMemory::Transfer::IntoGuest));
  if (!c.mem.in_bounds(ro_datalen_out, 4) || !c.mem.in_bounds(ro_flags_out, 2)) return Errno::fault;
  int flags = 0;
  if (ri_flags & riflag::recv_peek) flags |= MSG_PEEK;
  if (ri_flags & riflag::recv_waitall) flags |= MSG_WAITALL;
  size_t n = 0;
  WASI_TRY(stream_read(c, *e, iov, flags, n));
  c.mem.store<uint32_t>(ro_datalen_out, uint32_t(n));
  return c.mem.store<uint16_t>(ro_flags_out, 0);
}

Ret sock_send(Call& c, uint32_t fd, uint32_t si_data, uint32_t si_data_len, uint32_t si_flags,
              uint32_t so_datalen_out) {
  FdEntry* e;
  WASI_TRY(stream_socket(c, fd, right::fd_write, e));
  if (si_flags != 0) return Errno::inval; // preview1 defines no send flags
  auto& iov = c.ctx.iov_scratch();
  WASI_TRY(c.mem.iovecs(si_data, si_data_len, iov, GuestMemory::Transfer::FromGuest));
  if (!c.mem.in_bounds(so_datalen_out, 4)) return Errno::fault;
  size_t n = 0;
  WASI_TRY(stream_write(c, *e, iov, n));
  return c.mem.store<uint32_t>(so_datalen_out, uint32_t(n));
}

Ret sock_shutdown(Call& c, uint32_t fd, uint32_t how) {
  FdEntry* e;
  WASI_TRY(stream_socket(c, fd, right::sock_shutdown, e));
  bool rd = how & sdflag::rd, wr = how & sdflag::wr;
  if (how == 0 || (how & ~uint32_t(sdflag::rd | sdflag::wr))) return Errno::inval;
  int host_how = rd && wr ? SHUT_RDWR : rd ? SHUT_RD : SHUT_WR;
  if (wr && e->gateway && e->kind == FdKind::TcpStream && c.ctx.gateway_link())
    c.ctx.gateway_link()->closing(*e->gateway, true);
  if (::shutdown(e->host.get(), host_how) != 0) return last_errno();
  e->socket->shut_read |= rd;
  e->socket->shut_write |= wr;
  return Errno::success;
}

} // namespace tern::wasi::calls
