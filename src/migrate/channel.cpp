#include "migrate/channel.h"

#include "util/hex.h"
#include "util/host_port.h"
#include "util/sha256.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tern::migrate {
namespace {

// TLS_AES_128_GCM_SHA256: its SHA-256 is what a PSK is bound to by default
// (also in `openssl s_client -psk`, which tests use as a foreign client).
constexpr unsigned char kCipherId[2] = {0x13, 0x01};
constexpr const char* kCipherName = "TLS_AES_128_GCM_SHA256";
constexpr std::string_view kIdentityPrefix = "tern-psk-1:";
constexpr size_t kWriteBuffer = size_t(1) << 18;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void init_openssl() {
  static std::once_flag once;
  // The system's openssl.cnf is not read: the channel's settings are the
  // same on every host (and under qemu, which would read the host's).
  std::call_once(once, [] { OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr); });
}

// The reason of the last OpenSSL error ("sslv3 alert handshake failure").
std::string openssl_reason() {
  unsigned long e = ERR_peek_last_error();
  const char* reason = e ? ERR_reason_error_string(e) : nullptr;
  std::string text = reason ? reason : (e ? fmt::format("OpenSSL error {:x}", e) : "");
  ERR_clear_error();
  return text;
}

std::string errno_text(int error) {
  return error ? std::strerror(error) : "the connection ended";
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

std::string format_address(const sockaddr* addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return fmt::format("{}:{}", host, port);
  }
  if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  return fmt::format("[{}]:{}", host, port);
}

using AddrList = std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)>;

AddrList resolve(const util::HostPort& hp, bool passive, std::string_view option,
                 std::string_view spec) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* found = nullptr;
  const char* host = hp.host.empty() ? nullptr : hp.host.c_str();
  if (int rc = ::getaddrinfo(host, hp.port.c_str(), &hints, &found); rc != 0)
    throw Error(fmt::format("{} {}: {}", option, spec, ::gai_strerror(rc)));
  return AddrList(found, ::freeaddrinfo);
}

} // namespace

// ------------------------------------------------------------------ keys

Key Key::generate() {
  init_openssl();
  Key k;
  if (RAND_bytes(k.bytes_.data(), static_cast<int>(k.bytes_.size())) != 1)
    throw Error("cannot generate a random key: " + openssl_reason());
  return k;
}

Key Key::load(const std::string& path) {
  util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw Error(fmt::format("cannot read key file {}: {}", path, std::strerror(errno)));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(fmt::format("key file {} is not a regular file", path));
  // As ssh does with private keys: a key others can read is not secret.
  if (st.st_mode & 077)
    throw Error(fmt::format("key file {} is accessible by others (mode {:04o}); run chmod 600 {}",
                            path, st.st_mode & 07777, path));
  if (st.st_uid != ::geteuid() && st.st_uid != 0)
    throw Error(fmt::format("key file {} belongs to another user (uid {})", path, st.st_uid));
  char text[256];
  ssize_t n;
  do n = ::read(fd.get(), text, sizeof text);
  while (n < 0 && errno == EINTR);
  if (n < 0) throw Error(fmt::format("cannot read key file {}: {}", path, std::strerror(errno)));
  size_t len = static_cast<size_t>(n);
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) --len;
  Key k;
  bool ok = len == 2 * kKeyBytes;
  for (size_t i = 0; ok && i < kKeyBytes; ++i) {
    const int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    k.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (!ok)
    throw Error(
        fmt::format("key file {} does not hold a key (64 hex digits, from tern keygen)", path));
  return k;
}

void Key::save_new(const std::string& path) const {
  util::UniqueFd fd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    if (errno == EEXIST)
      throw Error(fmt::format("{} exists; a key is never overwritten (remove it first)", path));
    throw Error(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  }
  const std::string text = util::to_hex(bytes_) + "\n";
  bool ok = ::fchmod(fd.get(), 0600) == 0 &&
            ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd.get()) == 0;
  if (!ok) {
    const int error = errno;
    ::unlink(path.c_str());
    throw Error(fmt::format("cannot write {}: {}", path, std::strerror(error)));
  }
}

std::string Key::id() const {
  std::vector<uint8_t> input;
  const std::string_view domain = "tern key id\n";
  input.insert(input.end(), domain.begin(), domain.end());
  input.insert(input.end(), bytes_.begin(), bytes_.end());
  const util::Sha256Digest digest = util::sha256(input);
  return util::to_hex(std::span<const uint8_t>(digest).first(8));
}

// ------------------------------------------------------------- listener

Listener::Listener(std::string_view spec, std::string_view option) {
  const util::HostPort hp = util::split_host_port(spec, option);
  AddrList list = resolve(hp, true, option, spec);
  const addrinfo* a = list.get();
  fd_ = util::UniqueFd(::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd_) throw Error(fmt::format("{} {}: socket: {}", option, spec, std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_.get(), a->ai_addr, a->ai_addrlen) != 0)
    throw Error(fmt::format("{} {}: bind: {}", option, spec, std::strerror(errno)));
  if (::listen(fd_.get(), 16) != 0)
    throw Error(fmt::format("{} {}: listen: {}", option, spec, std::strerror(errno)));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  address_ = format_address(reinterpret_cast<sockaddr*>(&bound));
}

util::UniqueFd Listener::accept(std::string& peer) {
  for (;;) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    util::UniqueFd fd(::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC));
    if (fd) {
      peer = format_address(reinterpret_cast<sockaddr*>(&from));
      return fd;
    }
    // Errors of the connection being accepted, not of the listener.
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == ENETDOWN ||
        errno == EHOSTUNREACH || errno == ENETUNREACH || errno == EAGAIN)
      continue;
    throw Error(fmt::format("accept on {}: {}", address_, std::strerror(errno)));
  }
}

// ---------------------------------------------------------------- channel

struct Channel::State {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  int fd = -1;
  int last_errno = 0; // of the socket call that failed last
  std::array<uint8_t, kKeyBytes> key{};
  std::string identity; // ours: kIdentityPrefix + key id
  // Server: what the client offered.
  bool offered_psk = false;
  std::string offered_identity;

  ~State() {
    SSL_free(ssl); // frees the BIO too
    SSL_CTX_free(ctx);
  }
};

namespace {

// The socket BIO: send/recv with MSG_NOSIGNAL, so a peer that went away is
// EPIPE, not a SIGPIPE that would kill tern (and the program it moves).
int bio_write(BIO* bio, const char* data, int len) {
  auto* st = static_cast<Channel::State*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t n = ::send(st->fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n >= 0) return static_cast<int>(n);
  st->last_errno = errno;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(bio);
  return -1;
}

int bio_read(BIO* bio, char* out, int len) {
  auto* st = static_cast<Channel::State*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t n = ::recv(st->fd, out, static_cast<size_t>(len), 0);
  if (n >= 0) {
    if (n == 0) st->last_errno = 0;
    return static_cast<int>(n);
  }
  st->last_errno = errno;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(bio);
  return -1;
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tern socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    return m;
  }();
  return method;
}

// A session that stands for the pre-shared key (OpenSSL's form of an
// external PSK in TLS 1.3).
SSL_SESSION* psk_session(SSL* ssl, const Channel::State& st) {
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kCipherId);
  if (!cipher) return nullptr;
  SSL_SESSION* s = SSL_SESSION_new();
  if (!s) return nullptr;
  if (!SSL_SESSION_set1_master_key(s, st.key.data(), st.key.size()) ||
      !SSL_SESSION_set_cipher(s, cipher) || !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
    SSL_SESSION_free(s);
    return nullptr;
  }
  return s;
}

int client_psk(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* id_len,
               SSL_SESSION** session) {
  auto* st = static_cast<Channel::State*>(SSL_get_app_data(ssl));
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kCipherId);
  *session = nullptr;
  if (!cipher) return 0;
  // A second ClientHello for another hash: the key is bound to SHA-256.
  if (md != nullptr && md != SSL_CIPHER_get_handshake_digest(cipher)) return 1;
  *session = psk_session(ssl, *st);
  if (!*session) return 0;
  *id = reinterpret_cast<const unsigned char*>(st->identity.data());
  *id_len = st->identity.size();
  return 1;
}

int server_psk(SSL* ssl, const unsigned char* id, size_t id_len, SSL_SESSION** session) {
  auto* st = static_cast<Channel::State*>(SSL_get_app_data(ssl));
  st->offered_psk = true;
  st->offered_identity.assign(reinterpret_cast<const char*>(id), std::min<size_t>(id_len, 80));
  *session = nullptr;
  // An unknown identity: no PSK, and without a certificate the handshake
  // then fails.
  if (st->offered_identity != st->identity) return 1;
  *session = psk_session(ssl, *st);
  return *session ? 1 : 0;
}

} // namespace

Channel::Channel(util::UniqueFd socket, std::string peer, const ChannelOptions& options)
    : socket_(std::move(socket)), peer_(std::move(peer)), timeout_(options.timeout),
      state_(std::make_unique<State>()) {
  cancel_event_ = util::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!cancel_event_) throw Error(fmt::format("eventfd: {}", std::strerror(errno)));
  set_nonblocking(socket_.get());
  int one = 1;
  // Messages are flushed whole; a small one (a commit) must not wait.
  ::setsockopt(socket_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  state_->fd = socket_.get();
  out_.reserve(kWriteBuffer);
}

Channel::~Channel() = default;

std::unique_ptr<Channel> Channel::connect(std::string_view to, const Key& key,
                                          const ChannelOptions& options) {
  const util::HostPort hp = util::split_host_port(to, "--to");
  AddrList list = resolve(hp, false, "--to", to);
  std::string error;
  for (const addrinfo* a = list.get(); a; a = a->ai_next) {
    util::UniqueFd fd(::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
      error = std::strerror(errno);
      continue;
    }
    std::unique_ptr<Channel> ch(new Channel(std::move(fd), std::string(to), options));
    if (::connect(ch->socket_.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        error = std::strerror(errno);
        continue;
      }
      ch->wait_for(POLLOUT, "connecting");
      int so_error = 0;
      socklen_t len = sizeof so_error;
      ::getsockopt(ch->socket_.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (so_error != 0) {
        error = std::strerror(so_error);
        continue;
      }
    }
    std::copy(key.bytes().begin(), key.bytes().end(), ch->state_->key.begin());
    ch->state_->identity = std::string(kIdentityPrefix) + key.id();
    ch->handshake(true);
    return ch;
  }
  throw ChannelError(fmt::format("cannot connect to {}: {}", to, error));
}

std::unique_ptr<Channel> Channel::accept(util::UniqueFd socket, std::string peer, const Key& key,
                                         const ChannelOptions& options) {
  std::unique_ptr<Channel> ch(new Channel(std::move(socket), std::move(peer), options));
  std::copy(key.bytes().begin(), key.bytes().end(), ch->state_->key.begin());
  ch->state_->identity = std::string(kIdentityPrefix) + key.id();
  ch->handshake(false);
  return ch;
}

void Channel::handshake(bool client) {
  init_openssl();
  State& st = *state_;
  st.ctx = SSL_CTX_new(client ? TLS_client_method() : TLS_server_method());
  if (!st.ctx) throw Error("cannot create a TLS context: " + openssl_reason());
  SSL_CTX_set_min_proto_version(st.ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(st.ctx, TLS1_3_VERSION);
  SSL_CTX_set_ciphersuites(st.ctx, kCipherName);
  SSL_CTX_set_options(st.ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(st.ctx, SSL_SESS_CACHE_OFF);
  if (client)
    SSL_CTX_set_psk_use_session_callback(st.ctx, client_psk);
  else
    SSL_CTX_set_psk_find_session_callback(st.ctx, server_psk);
  st.ssl = SSL_new(st.ctx);
  BIO* bio = BIO_new(socket_bio_method());
  if (!st.ssl || !bio) {
    BIO_free(bio);
    throw Error("cannot create a TLS connection: " + openssl_reason());
  }
  BIO_set_data(bio, &st);
  BIO_set_init(bio, 1);
  SSL_set_bio(st.ssl, bio, bio);
  SSL_set_app_data(st.ssl, &st);
  SSL_set_mode(st.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (client)
    SSL_set_connect_state(st.ssl);
  else
    SSL_set_accept_state(st.ssl);
  for (;;) {
    const int rc = SSL_do_handshake(st.ssl);
    if (rc == 1) break;
    const int error = SSL_get_error(st.ssl, rc);
    if (error == SSL_ERROR_WANT_READ)
      wait_for(POLLIN, "in the TLS handshake");
    else if (error == SSL_ERROR_WANT_WRITE)
      wait_for(POLLOUT, "in the TLS handshake");
    else
      fail("in the TLS handshake", error);
  }
  // psk_dhe_ke without a certificate: a session not resumed from the key
  // would mean the peer was never authenticated. OpenSSL cannot complete
  // one without a certificate, but say so rather than assume it.
  if (!SSL_session_reused(st.ssl))
    throw ChannelError(fmt::format("{}: the TLS handshake did not use the shared key", peer_));
}

void Channel::wait_for(short events, std::string_view doing) {
  if (cancelled_.load()) throw ChannelCancelled(fmt::format("{}: cancelled", peer_));
  pollfd fds[2] = {{socket_.get(), events, 0}, {cancel_event_.get(), POLLIN, 0}};
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const int rc = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) throw ChannelError(fmt::format("poll: {}", std::strerror(errno)));
    if (fds[1].revents) throw ChannelCancelled(fmt::format("{}: cancelled", peer_));
    if (rc > 0) return; // ready, or an error the next call reports
    throw ChannelTimeout(
        fmt::format("{} did not answer for {} ms ({})", peer_, timeout_.count(), doing));
  }
}

void Channel::fail(std::string_view doing, int ssl_error) {
  State& st = *state_;
  std::string reason;
  if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    reason = ssl_error == SSL_ERROR_ZERO_RETURN ? "the peer closed the channel"
                                                : errno_text(st.last_errno);
  } else {
    const unsigned long e = ERR_peek_last_error();
    reason = openssl_reason();
    if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) reason = "the connection ended";
  }
  const bool in_handshake = !SSL_is_init_finished(st.ssl);
  if (in_handshake && SSL_is_server(st.ssl)) {
    if (!st.offered_psk)
      throw ChannelError(fmt::format("{} offered no pre-shared key, or does not speak TLS 1.3 ({})",
                                     peer_, reason));
    if (st.offered_identity != st.identity)
      throw ChannelError(fmt::format(
          "{} holds another key (key id {}; this one is {})", peer_,
          st.offered_identity.substr(std::min(st.offered_identity.size(), kIdentityPrefix.size())),
          st.identity.substr(kIdentityPrefix.size())));
  }
  if (in_handshake && !SSL_is_server(st.ssl) && reason.find("alert") != std::string::npos)
    throw ChannelError(fmt::format("{} refused the handshake ({}): it does not hold this key "
                                   "(key id {})",
                                   peer_, reason, st.identity.substr(kIdentityPrefix.size())));
  throw ChannelError(fmt::format("{} {}: {}", peer_, doing, reason));
}

void Channel::write(std::span<const uint8_t> bytes) {
  if (out_.size() + bytes.size() <= kWriteBuffer) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    return;
  }
  flush();
  if (bytes.size() >= kWriteBuffer) return write_through(bytes);
  out_.insert(out_.end(), bytes.begin(), bytes.end());
}

void Channel::flush() {
  write_through(out_);
  out_.clear();
}

void Channel::write_through(std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    if (cancelled_.load()) throw ChannelCancelled(fmt::format("{}: cancelled", peer_));
    size_t n = 0;
    const int rc = SSL_write_ex(state_->ssl, bytes.data() + done, bytes.size() - done, &n);
    if (rc == 1) {
      done += n;
      bytes_written_ += n;
      continue;
    }
    const int error = SSL_get_error(state_->ssl, rc);
    if (error == SSL_ERROR_WANT_WRITE)
      wait_for(POLLOUT, "sending");
    else if (error == SSL_ERROR_WANT_READ)
      wait_for(POLLIN, "sending");
    else
      fail("sending", error);
  }
}

size_t Channel::read_some(std::span<uint8_t> out) {
  if (out.empty()) return 0;
  for (;;) {
    if (cancelled_.load()) throw ChannelCancelled(fmt::format("{}: cancelled", peer_));
    size_t n = 0;
    const int rc = SSL_read_ex(state_->ssl, out.data(), out.size(), &n);
    if (rc == 1) {
      bytes_read_ += n;
      return n;
    }
    const int error = SSL_get_error(state_->ssl, rc);
    if (error == SSL_ERROR_ZERO_RETURN) return 0;
    if (error == SSL_ERROR_WANT_READ)
      wait_for(POLLIN, "receiving");
    else if (error == SSL_ERROR_WANT_WRITE)
      wait_for(POLLOUT, "receiving");
    else
      fail("receiving", error);
  }
}

bool Channel::readable(std::chrono::milliseconds wait) {
  if (SSL_pending(state_->ssl) > 0) return true;
  pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {cancel_event_.get(), POLLIN, 0}};
  int rc;
  do rc = ::poll(fds, 2, static_cast<int>(wait.count()));
  while (rc < 0 && errno == EINTR);
  if (fds[1].revents) throw ChannelCancelled(fmt::format("{}: cancelled", peer_));
  return rc > 0;
}

std::array<uint8_t, 32> Channel::export_secret(std::string_view label) const {
  std::array<uint8_t, 32> out{};
  const std::string name(label);
  if (SSL_export_keying_material(state_->ssl, out.data(), out.size(), name.data(), name.size(),
                                 nullptr, 0, 0) != 1)
    throw ChannelError(fmt::format("{}: deriving a secret from the channel failed", peer_));
  return out;
}

void Channel::cancel() {
  cancelled_.store(true);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(cancel_event_.get(), &one, sizeof one);
}

void Channel::close() {
  if (closed_) return;
  closed_ = true;
  flush();
  for (int tries = 0; tries < 4; ++tries) {
    const int rc = SSL_shutdown(state_->ssl);
    if (rc >= 0) return; // close_notify sent (the peer's is not awaited)
    const int error = SSL_get_error(state_->ssl, rc);
    if (error != SSL_ERROR_WANT_WRITE) return;
    wait_for(POLLOUT, "closing");
  }
}

} // namespace tern::migrate
