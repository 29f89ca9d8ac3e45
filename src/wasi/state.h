// A WASI program's host state in a snapshot: the "WASI" extension section
// (docs/snapshot-format.md, "WASI state"). Saving writes the context down as
// semantic records (args, env, preopens by guest name, every fd with its
// kind, guest path, preopen, flags, rights, offset and file identity,
// sockets, clock readings); restoring builds a new context on this host
// from them, reopening files by guest path under the matching preopen.
#pragma once

#include "snapshot/model.h"
#include "wasi/context.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace tern::wasi {

inline constexpr snapshot::Tag kStateTag = snapshot::make_tag("WASI");

struct SaveOptions {
  // Store the contents of regular files the program has open for writing,
  // so a restore on a host without the same files can write them back.
  bool bundle_files = false;
};

// Writes `ctx` down. Reads the host (file positions, sizes, mtimes, clock
// readings) but changes nothing. Throws tern::Error for state that cannot be
// saved (naming the fd).
snapshot::ExtensionSection save_state(WasiContext& ctx, const SaveOptions& options = {});

// What a restore may open is what these options grant, never what the
// snapshot names (docs/security.md): the snapshot is untrusted input.
struct RestoreOptions {
  // --dir at restore: preopens to map by guest name onto this host's
  // directories. A saved preopen whose guest name is not here has no
  // directory on this host: a record that needs it is refused...
  std::vector<Preopen> dirs;
  // ...unless the user accepts the snapshot's saved host directories for
  // the preopens `dirs` does not name (--dir-from-snapshot).
  bool dirs_from_snapshot = false;
  // Standard streams: empty inherits tern's own (like `tern run`). A stream
  // the checkpoint had redirected to a file needs one of these...
  std::string stdin_path, stdout_path, stderr_path;
  // ...or the user's consent to continue it in the snapshot's file, at its
  // saved offset (--stdio-from-snapshot).
  bool stdio_from_snapshot = false;
  // Reopen files whose identity (size, mtime) changed since the checkpoint
  // instead of refusing to restore.
  bool allow_changed_files = false;
  ResolveMode resolve_mode = ResolveMode::Auto;
  // The socket extension's sandbox for the restored program (--allow-connect,
  // --allow-bind, --allow-resolve as `tern run` takes them): the restore's
  // own, not the checkpoint's, like its standard streams. A socket of the
  // snapshot is bound and connected again only where it allows.
  std::vector<std::string> allow_connect, allow_bind, allow_resolve;
  // --listen ADDR:PORT at restore: the snapshot's listening sockets at these
  // addresses may listen again (without --allow-bind). Each must name one.
  std::vector<std::string> listen;
  // Connected TCP sockets (by fd) that the caller brings back itself (a
  // gateway re-joining them): they are in the fd table as recorded, without
  // a host socket, for the caller to give one before the program runs.
  std::set<uint32_t> relayed_streams;
};

// Builds the context of a restored program: same args and env, same fd
// numbers, files reopened by guest path under the matching preopen with the
// same flags and at the same offset, bundled files written back first,
// monotonic and CPU clocks continuing from their saved readings, listening
// sockets bound again at their addresses, connected sockets back as reset by
// the peer. Throws tern::Error naming the file (or socket) that cannot be
// restored, e.g. "fd 5 (/data/out.txt): changed since the checkpoint".
std::unique_ptr<WasiContext> restore_state(const snapshot::ExtensionSection& section,
                                           const RestoreOptions& options);

// For `tern inspect`: the saved state as text lines and as JSON. Both
// throw tern::Error for a malformed payload. Strings that are not UTF-8
// (arguments, environment, paths can be any bytes) are JSON arrays of
// their byte values, and \xHH escapes in the text.
std::vector<std::string> describe_state(const snapshot::ExtensionSection& section);
std::string describe_state_json(const snapshot::ExtensionSection& section);

} // namespace tern::wasi
