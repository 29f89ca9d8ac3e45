#include "wasi/posix_errno.h"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace tern::wasi {

Errno errno_from_posix(int e) {
  switch (e) {
  case 0:
    return Errno::success;
  case E2BIG:
    return Errno::toobig;
  case EACCES:
    return Errno::acces;
  case EADDRINUSE:
    return Errno::addrinuse;
  case EADDRNOTAVAIL:
    return Errno::addrnotavail;
  case EAFNOSUPPORT:
    return Errno::afnosupport;
  case EAGAIN:
    return Errno::again;
  case EALREADY:
    return Errno::already;
  case EBADF:
    return Errno::badf;
  case EBADMSG:
    return Errno::badmsg;
  case EBUSY:
    return Errno::busy;
  case ECANCELED:
    return Errno::canceled;
  case ECHILD:
    return Errno::child;
  case ECONNABORTED:
    return Errno::connaborted;
  case ECONNREFUSED:
    return Errno::connrefused;
  case ECONNRESET:
    return Errno::connreset;
  case EDEADLK:
    return Errno::deadlk;
  case EDESTADDRREQ:
    return Errno::destaddrreq;
  case EDOM:
    return Errno::dom;
  case EDQUOT:
    return Errno::dquot;
  case EEXIST:
    return Errno::exist;
  case EFAULT:
    return Errno::fault;
  case EFBIG:
    return Errno::fbig;
  case EHOSTUNREACH:
    return Errno::hostunreach;
  case EIDRM:
    return Errno::idrm;
  case EILSEQ:
    return Errno::ilseq;
  case EINPROGRESS:
    return Errno::inprogress;
  case EINTR:
    return Errno::intr;
  case EINVAL:
    return Errno::inval;
  case EIO:
    return Errno::io;
  case EISCONN:
    return Errno::isconn;
  case EISDIR:
    return Errno::isdir;
  case ELOOP:
    return Errno::loop;
  case EMFILE:
    return Errno::mfile;
  case EMLINK:
    return Errno::mlink;
  case EMSGSIZE:
    return Errno::msgsize;
  case EMULTIHOP:
    return Errno::multihop;
  case ENAMETOOLONG:
    return Errno::nametoolong;
  case ENETDOWN:
    return Errno::netdown;
  case ENETRESET:
    return Errno::netreset;
  case ENETUNREACH:
    return Errno::netunreach;
  case ENFILE:
    return Errno::nfile;
  case ENOBUFS:
    return Errno::nobufs;
  case ENODEV:
    return Errno::nodev;
  case ENOENT:
    return Errno::noent;
  case ENOEXEC:
    return Errno::noexec;
  case ENOLCK:
    return Errno::nolck;
  case ENOLINK:
    return Errno::nolink;
  case ENOMEM:
    return Errno::nomem;
  case ENOMSG:
    return Errno::nomsg;
  case ENOPROTOOPT:
    return Errno::noprotoopt;
  case ENOSPC:
    return Errno::nospc;
  case ENOSYS:
    return Errno::nosys;
  case ENOTCONN:
    return Errno::notconn;
  case ENOTDIR:
    return Errno::notdir;
  case ENOTEMPTY:
    return Errno::notempty;
  case ENOTRECOVERABLE:
    return Errno::notrecoverable;
  case ENOTSOCK:
    return Errno::notsock;
  case ENOTSUP:
    return Errno::notsup; // == EOPNOTSUPP on Linux
  case ENOTTY:
    return Errno::notty;
  case ENXIO:
    return Errno::nxio;
  case EOVERFLOW:
    return Errno::overflow;
  case EOWNERDEAD:
    return Errno::ownerdead;
  case EPERM:
    return Errno::perm;
  case EPIPE:
    return Errno::pipe;
  case EPROTO:
    return Errno::proto;
  case EPROTONOSUPPORT:
    return Errno::protonosupport;
  case EPROTOTYPE:
    return Errno::prototype;
  case ERANGE:
    return Errno::range;
  case EROFS:
    return Errno::rofs;
  case ESPIPE:
    return Errno::spipe;
  case ESRCH:
    return Errno::srch;
  case ESTALE:
    return Errno::stale;
  case ETIMEDOUT:
    return Errno::timedout;
  case ETXTBSY:
    return Errno::txtbsy;
  case EXDEV:
    return Errno::xdev;
  default:
    return Errno::io; // a host error WASI has no name for
  }
}

Errno last_errno() {
  return errno_from_posix(errno);
}

std::string errno_text(Errno e) {
  if (e == Errno::notcapable) return "outside its preopened directory";
  // The inverse of errno_from_posix, for the few messages that need it.
  for (int posix = 1; posix < 256; ++posix)
    if (errno_from_posix(posix) == e) return std::strerror(posix);
  return fmt::format("WASI errno {}", static_cast<int>(e));
}

} // namespace tern::wasi
