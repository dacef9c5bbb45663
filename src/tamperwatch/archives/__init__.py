"""Compressed inputs and archives: detection by magic bytes, members and bounded decompression.

An input may be compressed with gzip, bzip2 or xz, or be a zip or tar archive (a tar plain or
compressed with one of the three). Only the first bytes decide, never the file name. zstd is
recognised but not read, because Python 3.11's standard library has no zstd decoder.

* A compressed file is decompressed as a stream. The first :data:`REPLAY_BYTES` of the output
  stay in memory, so that format detection can look at the start and the reader can seek back
  to it. Nothing is written to disk.
* An archive member is scanned as a file named ``ARCHIVE!member/path``: the archive's path,
  :data:`MEMBER_SEPARATOR`, then the member's name inside the archive. That name is used in
  the table of inputs, in warnings and in the evidence of incidents.
* Hosts follow the layout of the archive as they follow the layout of a folder. A member
  inside a top-level folder of the archive takes that folder's name as its host. When every
  member sits under one single top-level folder (a tarball of a collection folder), that folder
  is removed from the names first.
* One archive or compressed file inside another (a ``.gz`` or a ``.zip`` member of a tar) is
  read. Anything compressed or archived inside that second level is named in a warning and
  not read (:data:`MAX_NESTING`).

Limits, checked while reading. They are attributes of :mod:`tamperwatch.archives.limits`
that each check reads, so a caller (or a test) may change them there:

* :data:`MAX_DECOMPRESSED_BYTES` per input: all bytes produced by decompression, and all
  bytes read from zip members, count toward it;
* :data:`MAX_COMPRESSION_RATIO`: output of one compressed stream or zip member divided by the
  compressed bytes it consumed, checked once the output passes :data:`RATIO_FREE_BYTES`;
* :data:`MAX_MEMBERS` entries per archive.

A limit ends the read at that point: records read before it are kept, the file's ``error``
names the limit, and the scan goes on with the other inputs. Damaged data (a truncated gzip
stream, a zip member with a bad CRC, a tar cut inside a member) also ends the read, with a
warning at the line where the data stopped.

Members are never extracted: links, devices and names that are absolute or contain ``..`` are
named in a warning and skipped. A nested archive that must be listed before it is read (a zip
inside a tar, a tar inside a zip) is copied to a temporary spool first: in memory up to
:data:`SPOOL_MEMORY_BYTES`, then in a file in the system's temporary folder that is deleted
when the member has been read.
"""

from tamperwatch.archives.inputs import MemberRef, Part, iter_input_parts, list_archive, open_member
from tamperwatch.archives.limits import REPLAY_BYTES, compression_of
from tamperwatch.archives.members import ArchiveError, archive_of

__all__ = [
    "REPLAY_BYTES",
    "ArchiveError",
    "MemberRef",
    "Part",
    "archive_of",
    "compression_of",
    "iter_input_parts",
    "list_archive",
    "open_member",
]
