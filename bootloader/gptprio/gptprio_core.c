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

#include "gptprio_core.h"

const gp_u8 gp_boot_type[16] = { 0x68, 0x61, 0x63, 0x6b, 0x20, 0x74, 0x68, 0x65,
                                 0x20, 0x70, 0x6c, 0x61, 0x6e, 0x65, 0x74, 0x21 };
const gp_u8 gp_root_type[16] = { 0x6a, 0x01, 0x26, 0x55, 0x97, 0x1a, 0xa4, 0x4e,
                                 0xb3, 0x9a, 0xb7, 0xc8, 0xc6, 0xca, 0x45, 0x02 };
const gp_u8 gp_hash_type[16] = { 0xaf, 0x10, 0x8f, 0x59, 0x55, 0xc9, 0x56, 0x44,
                                 0x6a, 0x99, 0x77, 0x20, 0x06, 0x8a, 0x6c, 0xea };

#define HEADER_SIZE 92
#define ENTRY_SIZE 128
/* 128 entries is the norm; refuse absurd arrays rather than allocate them in firmware. */
#define MAX_ENTRIES 1024

/* Header field offsets (UEFI 2.x, 5.3.2). */
#define H_SIGNATURE 0
#define H_REVISION 8
#define H_SIZE 12
#define H_CRC 16
#define H_RESERVED 20
#define H_MY_LBA 24
#define H_ALT_LBA 32
#define H_FIRST_USABLE 40
#define H_LAST_USABLE 48
#define H_ENTRIES_LBA 72
#define H_NUM_ENTRIES 80
#define H_ENTRY_SIZE 84
#define H_ENTRIES_CRC 88

/* Entry field offsets. */
#define E_TYPE 0
#define E_UNIQUE 16
#define E_ATTRS 48

static gp_u32
get32 (const gp_u8 *p)
{
  return (gp_u32) p[0] | ((gp_u32) p[1] << 8) | ((gp_u32) p[2] << 16) | ((gp_u32) p[3] << 24);
}

static gp_u64
get64 (const gp_u8 *p)
{
  return (gp_u64) get32 (p) | ((gp_u64) get32 (p + 4) << 32);
}

static void
put32 (gp_u8 *p, gp_u32 v)
{
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = (v >> 24) & 0xff;
}

static void
put64 (gp_u8 *p, gp_u64 v)
{
  put32 (p, (gp_u32) v);
  put32 (p + 4, (gp_u32) (v >> 32));
}

/* Slicing-by-8 tables, built on first use (the tests run the core 262 144 times). */
static gp_u32 crc_table[8][256];
static int crc_ready;

static void
crc_init (void)
{
  gp_u32 i, c;
  int k;

  for (i = 0; i < 256; i++)
    {
      c = i;
      for (k = 0; k < 8; k++)
        c = (c >> 1) ^ (0xedb88320 & (0 - (c & 1)));
      crc_table[0][i] = c;
    }
  for (i = 0; i < 256; i++)
    for (k = 1; k < 8; k++)
      crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xff];
  crc_ready = 1;
}

gp_u32
gp_crc32 (const void *buf, gp_u64 len)
{
  const gp_u8 *p = buf;
  gp_u32 crc = 0xffffffff;

  if (!crc_ready)
    crc_init ();
  while (len >= 8)
    {
      gp_u32 lo = crc ^ get32 (p), hi = get32 (p + 4);
      crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff]
            ^ crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24]
            ^ crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff]
            ^ crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
      p += 8;
      len -= 8;
    }
  while (len--)
    crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

void
gp_guid_text (const gp_u8 *g, char *out)
{
  /* The first three fields are little-endian on disk. */
  static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
  static const char hex[] = "0123456789abcdef";
  int i, o = 0;

  for (i = 0; i < 16; i++)
    {
      if (i == 4 || i == 6 || i == 8 || i == 10)
        out[o++] = '-';
      out[o++] = hex[g[order[i]] >> 4];
      out[o++] = hex[g[order[i]] & 0xf];
    }
  out[o] = 0;
}

const char *
gp_strerror (int status)
{
  switch (status)
    {
    case GP_OK:
      return "ok";
    case GP_IO:
      return "disk read or write failed";
    case GP_NO_TABLE:
      return "no valid GPT (primary and backup both invalid)";
    case GP_LAYOUT:
      return "the chosen BOOT partition is not followed by its ROOT and HASH partitions";
    case GP_NO_MEMORY:
      return "out of memory";
    case GP_TOO_BIG:
      return "GPT entry array too large";
    case GP_NOTHING:
      return "no bootable partition set (no BOOT partition with priority > 0 and tries left or successful)";
    default:
      return "unknown error";
    }
}

/* One table copy as read: header sector and entry array. */
struct copy
{
  gp_u8 header[HEADER_SIZE];
  gp_u8 *entries;
  gp_u32 num_entries;
};

/* Reads and validates the copy whose header is at `lba`.  0 if valid. */
static int
read_copy (const struct gp_io *io, gp_u64 lba, struct copy *c)
{
  gp_u8 hdr[HEADER_SIZE];
  gp_u32 crc, num, esize;
  gp_u64 entries_lba, array_len, array_sectors;

  c->entries = 0;
  if (io->read (io->ctx, lba * io->sector_size, HEADER_SIZE, hdr))
    return GP_IO;
  if (gp_memcmp (hdr + H_SIGNATURE, "EFI PART", 8) != 0
      || get32 (hdr + H_REVISION) != 0x00010000
      || get32 (hdr + H_SIZE) != HEADER_SIZE)
    return GP_NO_TABLE;
  crc = get32 (hdr + H_CRC);
  put32 (hdr + H_CRC, 0);
  if (gp_crc32 (hdr, HEADER_SIZE) != crc)
    return GP_NO_TABLE;
  put32 (hdr + H_CRC, crc);
  if (get64 (hdr + H_MY_LBA) != lba)
    return GP_NO_TABLE;
  num = get32 (hdr + H_NUM_ENTRIES);
  esize = get32 (hdr + H_ENTRY_SIZE);
  entries_lba = get64 (hdr + H_ENTRIES_LBA);
  if (esize != ENTRY_SIZE || num == 0)
    return GP_NO_TABLE;
  if (num > MAX_ENTRIES)
    return GP_TOO_BIG;
  array_len = (gp_u64) num * ENTRY_SIZE;
  array_sectors = gp_div64 (array_len + io->sector_size - 1, io->sector_size);
  if (entries_lba < 2 || entries_lba >= io->sectors
      || array_sectors > io->sectors - entries_lba
      || (entries_lba <= lba && lba < entries_lba + array_sectors))
    return GP_NO_TABLE;
  c->entries = gp_malloc (array_len);
  if (!c->entries)
    return GP_NO_MEMORY;
  if (io->read (io->ctx, entries_lba * io->sector_size, (gp_u32) array_len, c->entries))
    {
      gp_free (c->entries);
      c->entries = 0;
      return GP_IO;
    }
  if (gp_crc32 (c->entries, array_len) != get32 (hdr + H_ENTRIES_CRC))
    {
      gp_free (c->entries);
      c->entries = 0;
      return GP_NO_TABLE;
    }
  gp_memcpy (c->header, hdr, HEADER_SIZE);
  c->num_entries = num;
  return GP_OK;
}

static gp_u8
field (gp_u64 attrs, int shift)
{
  return (gp_u8) ((attrs >> shift) & GP_FIELD_MASK);
}

/* Writes one copy: header sector (header, zero padding), then the entry array. */
static int
write_copy (const struct gp_io *io, const gp_u8 *header, gp_u64 my_lba, gp_u64 alt_lba,
            gp_u64 entries_lba, const gp_u8 *entries, gp_u32 num_entries, gp_u32 entries_crc)
{
  gp_u8 *sector;
  gp_u64 array_len = (gp_u64) num_entries * ENTRY_SIZE;
  int err = GP_OK;

  sector = gp_malloc (io->sector_size);
  if (!sector)
    return GP_NO_MEMORY;
  gp_memset (sector, 0, io->sector_size);
  gp_memcpy (sector, header, HEADER_SIZE);
  put32 (sector + H_RESERVED, 0);
  put64 (sector + H_MY_LBA, my_lba);
  put64 (sector + H_ALT_LBA, alt_lba);
  put64 (sector + H_ENTRIES_LBA, entries_lba);
  put32 (sector + H_ENTRIES_CRC, entries_crc);
  put32 (sector + H_CRC, 0);
  put32 (sector + H_CRC, gp_crc32 (sector, HEADER_SIZE));
  if (io->write (io->ctx, my_lba * io->sector_size, io->sector_size, sector)
      || io->write (io->ctx, entries_lba * io->sector_size, (gp_u32) array_len, entries))
    err = GP_IO;
  gp_free (sector);
  return err;
}

int
gp_next (const struct gp_io *io, struct gp_choice *out, int dry_run)
{
  struct copy primary, backup, *used;
  int pstat, bstat, status = GP_OK;
  gp_u64 last = io->sectors - 1;
  gp_u32 i, best = 0, nboot = 0;
  int best_set = -1;
  gp_u8 best_prio = 0;
  gp_u8 *e;
  gp_u64 attrs;

  gp_memset (out, 0, sizeof (*out));
  out->set = -1;
  if (io->sectors < 4)
    return GP_NO_TABLE;
  pstat = read_copy (io, 1, &primary);
  bstat = GP_NO_TABLE;
  backup.entries = 0;
  if (pstat != GP_OK)
    {
      if (pstat == GP_IO || pstat == GP_NO_MEMORY)
        return pstat;
      bstat = read_copy (io, last, &backup);
      if (bstat != GP_OK)
        return bstat == GP_TOO_BIG ? bstat : (bstat == GP_NO_TABLE ? GP_NO_TABLE : bstat);
      used = &backup;
      out->from_backup = 1;
    }
  else
    used = &primary;

  /* The rule: among BOOT partitions (table order) with tries_left > 0 or successful, the one
     with the strictly highest priority above 0; ties go to the earlier one. */
  for (i = 0; i < used->num_entries; i++)
    {
      gp_u8 prio, tries;
      int ok;

      e = used->entries + (gp_u64) i * ENTRY_SIZE;
      if (gp_memcmp (e + E_TYPE, gp_boot_type, 16) != 0)
        continue;
      attrs = get64 (e + E_ATTRS);
      prio = field (attrs, GP_PRIORITY_SHIFT);
      tries = field (attrs, GP_TRIES_SHIFT);
      ok = tries > 0 || ((attrs >> GP_SUCCESSFUL_BIT) & 1);
      if (ok && prio > best_prio)
        {
          best_prio = prio;
          best = i;
          best_set = (int) nboot;
        }
      nboot++;
    }
  if (best_set < 0)
    {
      status = GP_NOTHING;
      goto done;
    }
  if (best + 2 >= used->num_entries
      || gp_memcmp (used->entries + (gp_u64) (best + 1) * ENTRY_SIZE + E_TYPE, gp_root_type, 16) != 0
      || gp_memcmp (used->entries + (gp_u64) (best + 2) * ENTRY_SIZE + E_TYPE, gp_hash_type, 16) != 0)
    {
      status = GP_LAYOUT;
      goto done;
    }

  e = used->entries + (gp_u64) best * ENTRY_SIZE;
  attrs = get64 (e + E_ATTRS);
  out->set = best_set;
  out->boot.number = best + 1;
  out->root.number = best + 2;
  out->hash.number = best + 3;
  gp_memcpy (out->boot.unique_guid, e + E_UNIQUE, 16);
  gp_memcpy (out->root.unique_guid, e + ENTRY_SIZE + E_UNIQUE, 16);
  gp_memcpy (out->hash.unique_guid, e + 2 * ENTRY_SIZE + E_UNIQUE, 16);
  out->priority = best_prio;
  out->tries_before = field (attrs, GP_TRIES_SHIFT);
  out->successful = (attrs >> GP_SUCCESSFUL_BIT) & 1;
  out->tries_after = out->tries_before;

  if (out->tries_before > 0)
    {
      gp_u64 array_sectors, backup_entries, primary_entries;
      gp_u32 crc;

      out->tries_after = out->tries_before - 1;
      attrs = (attrs & ~(GP_FIELD_MASK << GP_TRIES_SHIFT))
              | ((gp_u64) out->tries_after << GP_TRIES_SHIFT);
      put64 (e + E_ATTRS, attrs);
      if (dry_run)
        goto done;
      /* Crash-safe order (README.md): the copy the next reader does not use first, so it keeps
         reading the old table until that copy is complete; then the copy it uses.  Within a
         copy, header sector before entry array. */
      array_sectors = gp_div64 ((gp_u64) used->num_entries * ENTRY_SIZE + io->sector_size - 1,
                                io->sector_size);
      if (array_sectors + 1 > last || get64 (used->header + H_ALT_LBA) != (out->from_backup ? 1 : last))
        {
          /* The backup is not at the disk's end (a grown disk): GRUB does not repair tables. */
          status = GP_NO_TABLE;
          goto done;
        }
      backup_entries = last - array_sectors;
      primary_entries = out->from_backup ? 2 : get64 (used->header + H_ENTRIES_LBA);
      crc = gp_crc32 (used->entries, (gp_u64) used->num_entries * ENTRY_SIZE);
      if (!out->from_backup)
        {
          status = write_copy (io, used->header, last, 1, backup_entries,
                               used->entries, used->num_entries, crc);
          if (status == GP_OK && io->flush && io->flush (io->ctx))
            status = GP_IO;
          if (status == GP_OK)
            status = write_copy (io, used->header, 1, last, primary_entries, used->entries,
                                 used->num_entries, crc);
        }
      else
        {
          status = write_copy (io, used->header, 1, last, primary_entries, used->entries,
                               used->num_entries, crc);
          if (status == GP_OK && io->flush && io->flush (io->ctx))
            status = GP_IO;
          if (status == GP_OK)
            status = write_copy (io, used->header, last, 1, backup_entries,
                                 used->entries, used->num_entries, crc);
        }
      if (status == GP_OK && io->flush && io->flush (io->ctx))
        status = GP_IO;
      if (status == GP_OK)
        out->wrote = 1;
    }

done:
  if (primary.entries && pstat == GP_OK)
    gp_free (primary.entries);
  if (backup.entries && bstat == GP_OK)
    gp_free (backup.entries);
  return status;
}
