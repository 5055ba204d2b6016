/*
 *  gptprio: choose the A/B partition set to boot from GPT attribute bits.
 *  Copyright (C) 2026 The abos authors
 *
 *  This program is free software: you can redistribute it and/or modify
 *  it under the terms of the GNU General Public License as published by
 *  the Free Software Foundation, either version 3 of the License, or
 *  (at your option) any later version.
 *
 *  This program is distributed in the hope that it will be useful,
 *  but WITHOUT ANY WARRANTY; without even the implied warranty of
 *  MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
 *  GNU General Public License for more details.
 *
 *  You should have received a copy of the GNU General Public License
 *  along with this program.  If not, see <https://www.gnu.org/licenses/>.
 */

/* The rule and the GPT edge, free of GRUB: the same file is compiled into the GRUB module
   (gptprio.c is the glue) and into the host harness (host/gptprio-host.c), so the code the
   tests drive on disk images is the code GRUB runs.  See README.md for the rule and the
   write order. */

#ifndef GPTPRIO_CORE_H
#define GPTPRIO_CORE_H 1

#ifdef GPTPRIO_HOST
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
typedef uint8_t gp_u8;
typedef uint16_t gp_u16;
typedef uint32_t gp_u32;
typedef uint64_t gp_u64;
#define gp_memcpy memcpy
#define gp_memset memset
#define gp_memcmp memcmp
#define gp_malloc malloc
#define gp_free free
#define gp_div64(a, b) ((a) / (b))
#else
#include <grub/types.h>
#include <grub/misc.h>
#include <grub/mm.h>
typedef grub_uint8_t gp_u8;
typedef grub_uint16_t gp_u16;
typedef grub_uint32_t gp_u32;
typedef grub_uint64_t gp_u64;
#define gp_memcpy grub_memcpy
#define gp_memset grub_memset
#define gp_memcmp grub_memcmp
#define gp_malloc grub_malloc
#define gp_free grub_free
/* i386 has no 64-bit division without libgcc */
#define gp_div64(a, b) grub_divmod64 ((a), (b), 0)
#endif

/* Attribute bits of a BOOT partition entry (ChromeOS/CoreOS/Bottlerocket layout). */
#define GP_PRIORITY_SHIFT 48
#define GP_TRIES_SHIFT 52
#define GP_SUCCESSFUL_BIT 56
#define GP_FIELD_MASK 0xfULL

/* Results of gp_next.  Values are stable: the host harness uses them as exit codes. */
enum gp_status
{
  GP_OK = 0,
  GP_IO = 1,         /* a read or write failed */
  GP_NO_TABLE = 2,   /* neither GPT copy is valid */
  GP_LAYOUT = 3,     /* a set's ROOT/HASH are not the two entries after its BOOT */
  GP_NO_MEMORY = 4,
  GP_TOO_BIG = 5,    /* entry array larger than we accept (sanity bound) */
  GP_NOTHING = 7     /* no set is bootable (signpost boot-select's exit code too) */
};

/* How the core reaches the disk.  Offsets and lengths in bytes. */
struct gp_io
{
  void *ctx;
  gp_u32 sector_size;   /* logical sector size: 512 or 4096 */
  gp_u64 sectors;       /* disk size in logical sectors */
  int (*read) (void *ctx, gp_u64 offset, gp_u32 len, void *buf);
  int (*write) (void *ctx, gp_u64 offset, gp_u32 len, const void *buf);
  /* Called between the two copies and at the end; may be NULL. */
  int (*flush) (void *ctx);
};

struct gp_part
{
  gp_u32 number;        /* 1-based entry index */
  gp_u8 unique_guid[16];  /* on-disk byte order */
};

struct gp_choice
{
  int set;                 /* 0 = A (first BOOT entry in table order), 1 = B, ... */
  struct gp_part boot, root, hash;
  gp_u8 priority;
  gp_u8 tries_before;
  gp_u8 tries_after;
  int successful;
  int from_backup;         /* the table was read from the backup copy */
  int wrote;               /* the GPT was rewritten (tries decremented) */
};

/* The whole decision: read the table (primary if valid, else backup), choose, and if the chosen
   set has tries left, decrement them and write both copies (the copy not read from first, each
   copy header sector then entry array, a flush after each copy).  dry_run: decide, do not
   write. */
int gp_next (const struct gp_io *io, struct gp_choice *out, int dry_run);

const char *gp_strerror (int status);

/* CRC-32 (IEEE 802.3, as GPT uses). */
gp_u32 gp_crc32 (const void *buf, gp_u64 len);

/* Lowercase 8-4-4-4-12 text of an on-disk GUID; out has room for 37 bytes. */
void gp_guid_text (const gp_u8 *guid, char *out);

/* The Bottlerocket BOOT partition type GUID, on-disk byte order. */
extern const gp_u8 gp_boot_type[16];
extern const gp_u8 gp_root_type[16];
extern const gp_u8 gp_hash_type[16];

#endif
