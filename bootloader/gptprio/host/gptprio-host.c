/*
 *  gptprio-host: the gptprio core (gptprio_core.c, the code inside the GRUB module) on disk
 *  image files, for tests.
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

/* Usage:
     gptprio-host next IMAGE [--dry-run] [--trace FILE]
       One boot decision on IMAGE (written in place unless --dry-run).  Prints
       `set=A boot_part=N root_part=N hash_part=N boot_uuid=U root_uuid=U hash_uuid=U
        tries_before=N tries_after=N wrote=0|1 from_backup=0|1`; exit status = gp_status
       (7: nothing bootable).  --trace: every write as a line `OFFSET LEN HEXDATA`, in order,
       `flush` lines between copies.
     gptprio-host table IMAGE
       Every state of the first two BOOT partitions' flags (priority 0-15, tries 0-15,
       successful 0-1, for both: 262144 states), each set in both GPT copies of an in-memory
       copy of IMAGE's tables and run through the core.  One line per state:
       `pa ta sa pb tb sb RESULT`, RESULT = `none` or `A|B TA TB SA SB PA PB` (the flags of both
       sets read back from the primary copy after the decision; the backup is checked to be
       valid and equal, else the line says `BAD ...`). */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gptprio_core.h"

static const char *prog = "gptprio-host";

static void
die (const char *what, const char *detail)
{
  fprintf (stderr, "%s: %s: %s\n", prog, what, detail);
  exit (10);
}

/* File-backed io. */
struct file_ctx
{
  int fd;
  FILE *trace;
};

static int
file_read (void *ctx, gp_u64 off, gp_u32 len, void *buf)
{
  struct file_ctx *f = ctx;
  return pread (f->fd, buf, len, (off_t) off) != (ssize_t) len;
}

static int
file_write (void *ctx, gp_u64 off, gp_u32 len, const void *buf)
{
  struct file_ctx *f = ctx;
  if (f->trace)
    {
      const unsigned char *b = buf;
      fprintf (f->trace, "%llu %u ", (unsigned long long) off, len);
      for (gp_u32 i = 0; i < len; i++)
        fprintf (f->trace, "%02x", b[i]);
      fputc ('\n', f->trace);
    }
  if (f->fd < 0)
    return 0;
  return pwrite (f->fd, buf, len, (off_t) off) != (ssize_t) len;
}

static int
file_flush (void *ctx)
{
  struct file_ctx *f = ctx;
  if (f->trace)
    fprintf (f->trace, "flush\n");
  return f->fd >= 0 && fsync (f->fd) != 0;
}

static void
print_choice (const struct gp_choice *c)
{
  char b[37], r[37], h[37];
  gp_guid_text (c->boot.unique_guid, b);
  gp_guid_text (c->root.unique_guid, r);
  gp_guid_text (c->hash.unique_guid, h);
  printf ("set=%c boot_part=%u root_part=%u hash_part=%u boot_uuid=%s root_uuid=%s "
          "hash_uuid=%s tries_before=%u tries_after=%u wrote=%d from_backup=%d\n",
          'A' + c->set, c->boot.number, c->root.number, c->hash.number, b, r, h,
          c->tries_before, c->tries_after, c->wrote, c->from_backup);
}

static gp_u32
sector_size_of (int fd)
{
  char sig[8];
  if (pread (fd, sig, 8, 4096) == 8 && memcmp (sig, "EFI PART", 8) == 0)
    return 4096;
  return 512;
}

static int
cmd_next (int argc, char **argv)
{
  const char *image = 0, *trace = 0;
  int dry = 0;
  for (int i = 0; i < argc; i++)
    {
      if (strcmp (argv[i], "--dry-run") == 0)
        dry = 1;
      else if (strcmp (argv[i], "--trace") == 0 && i + 1 < argc)
        trace = argv[++i];
      else if (!image)
        image = argv[i];
      else
        die ("unexpected argument", argv[i]);
    }
  if (!image)
    die ("usage", "next IMAGE [--dry-run] [--trace FILE]");
  struct file_ctx f = { -1, 0 };
  f.fd = open (image, dry ? O_RDONLY : O_RDWR);
  if (f.fd < 0)
    die (image, strerror (errno));
  if (trace && !(f.trace = fopen (trace, "w")))
    die (trace, strerror (errno));
  struct stat st;
  if (fstat (f.fd, &st) != 0)
    die (image, strerror (errno));
  struct gp_io io = { &f, sector_size_of (f.fd), 0, file_read, file_write, file_flush };
  io.sectors = (gp_u64) st.st_size / io.sector_size;
  struct gp_choice c;
  int status = gp_next (&io, &c, dry);
  if (f.trace)
    fclose (f.trace);
  close (f.fd);
  if (status != GP_OK)
    {
      fprintf (stderr, "%s: %s: %s\n", prog, image, gp_strerror (status));
      if (status == GP_NOTHING)
        printf ("set=none\n");
      return status;
    }
  print_choice (&c);
  return 0;
}

/* In-memory io over the two table regions of an image (head and tail). */
#define REGION (1024 * 1024)
struct mem_ctx
{
  unsigned char *head, *tail;
  gp_u64 size, tail_off;
};

static unsigned char *
mem_at (struct mem_ctx *m, gp_u64 off, gp_u32 len)
{
  if (off + len <= REGION)
    return m->head + off;
  if (off >= m->tail_off && off + len <= m->size)
    return m->tail + (off - m->tail_off);
  return 0;
}

static int
mem_read (void *ctx, gp_u64 off, gp_u32 len, void *buf)
{
  unsigned char *p = mem_at (ctx, off, len);
  if (!p)
    return 1;
  memcpy (buf, p, len);
  return 0;
}

static int
mem_write (void *ctx, gp_u64 off, gp_u32 len, const void *buf)
{
  unsigned char *p = mem_at (ctx, off, len);
  if (!p)
    return 1;
  memcpy (p, buf, len);
  return 0;
}

static gp_u32
le32 (const unsigned char *p)
{
  return p[0] | (p[1] << 8) | (p[2] << 16) | ((gp_u32) p[3] << 24);
}

static gp_u64
le64 (const unsigned char *p)
{
  return le32 (p) | ((gp_u64) le32 (p + 4) << 32);
}

static void
set32 (unsigned char *p, gp_u32 v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (v >> (8 * i)) & 0xff;
}

/* The header and entries of the copy at lba; NULL if its CRCs do not hold. */
static unsigned char *
copy_entries (struct mem_ctx *m, gp_u32 ss, gp_u64 lba, unsigned char **header)
{
  unsigned char *h = mem_at (m, lba * ss, ss);
  if (!h || memcmp (h, "EFI PART", 8) != 0)
    return 0;
  gp_u32 n = le32 (h + 80), crc = le32 (h + 16);
  unsigned char *e = mem_at (m, le64 (h + 72) * ss, n * 128);
  if (!e)
    return 0;
  set32 (h + 16, 0);
  gp_u32 calc = gp_crc32 (h, 92);
  set32 (h + 16, crc);
  if (calc != crc || gp_crc32 (e, n * 128) != le32 (h + 88))
    return 0;
  *header = h;
  return e;
}

/* Sets the flags of the BOOT entries (table order) in both copies and fixes their CRCs (the
   entry arrays are equal, so one CRC serves both). */
static int
set_flags (struct mem_ctx *m, gp_u32 ss, gp_u64 last, const gp_u64 *flags)
{
  unsigned char *h, *bh;
  unsigned char *e = mem_at (m, 0, 0), *be;
  h = mem_at (m, ss, ss);
  bh = mem_at (m, last * ss, ss);
  if (!h || !bh)
    return 1;
  gp_u32 n = le32 (h + 80), k = 0;
  e = mem_at (m, le64 (h + 72) * ss, n * 128);
  be = mem_at (m, le64 (bh + 72) * ss, n * 128);
  if (!e || !be || le32 (bh + 80) != n)
    return 1;
  for (gp_u32 i = 0; i < n && k < 2; i++)
    {
      unsigned char *x = e + i * 128;
      if (memcmp (x, gp_boot_type, 16) != 0)
        continue;
      gp_u64 a = le64 (x + 48) & ~(0x1ffULL << 48);
      a |= flags[k++];
      set32 (x + 48, (gp_u32) a);
      set32 (x + 52, (gp_u32) (a >> 32));
    }
  memcpy (be, e, n * 128);
  gp_u32 crc = gp_crc32 (e, n * 128);
  unsigned char *hs[2] = { h, bh };
  for (int c = 0; c < 2; c++)
    {
      set32 (hs[c] + 88, crc);
      set32 (hs[c] + 16, 0);
      set32 (hs[c] + 16, gp_crc32 (hs[c], 92));
    }
  return k != 2;
}

/* Flags of the first two BOOT entries, after checking both copies are valid and hold the same
   entries (the backup's array is compared byte for byte with the CRC-checked primary). */
static int
get_flags (struct mem_ctx *m, gp_u32 ss, gp_u64 last, gp_u64 *flags)
{
  unsigned char *h, *e = copy_entries (m, ss, 1, &h);
  if (!e)
    return 1;
  unsigned char *bh = mem_at (m, last * ss, ss);
  gp_u32 n = le32 (h + 80), k = 0, crc;
  if (!bh || memcmp (bh, "EFI PART", 8) != 0 || le32 (bh + 80) != n
      || le32 (bh + 88) != le32 (h + 88))
    return 1;
  unsigned char *be = mem_at (m, le64 (bh + 72) * ss, n * 128);
  crc = le32 (bh + 16);
  set32 (bh + 16, 0);
  int bad = !be || gp_crc32 (bh, 92) != crc || memcmp (be, e, n * 128) != 0;
  set32 (bh + 16, crc);
  if (bad)
    return 1;
  for (gp_u32 i = 0; i < n && k < 2; i++)
    if (memcmp (e + i * 128, gp_boot_type, 16) == 0)
      flags[k++] = le64 (e + i * 128 + 48) & (0x1ffULL << 48);
  return k != 2;
}

static int
cmd_table (int argc, char **argv)
{
  if (argc != 1)
    die ("usage", "table IMAGE");
  int fd = open (argv[0], O_RDONLY);
  if (fd < 0)
    die (argv[0], strerror (errno));
  struct stat st;
  if (fstat (fd, &st) != 0 || st.st_size < 2 * REGION)
    die (argv[0], "not a disk image of at least 2 MiB");
  gp_u32 ss = sector_size_of (fd);
  struct mem_ctx base = { malloc (REGION), malloc (REGION), (gp_u64) st.st_size,
                          (gp_u64) st.st_size - REGION };
  struct mem_ctx m = { malloc (REGION), malloc (REGION), base.size, base.tail_off };
  if (!base.head || !base.tail || !m.head || !m.tail)
    die ("table", "out of memory");
  if (pread (fd, base.head, REGION, 0) != REGION
      || pread (fd, base.tail, REGION, (off_t) base.tail_off) != REGION)
    die (argv[0], "cannot read the table regions");
  close (fd);
  memcpy (m.head, base.head, REGION);
  memcpy (m.tail, base.tail, REGION);
  struct gp_io io = { &m, ss, base.size / ss, mem_read, mem_write, 0 };
  gp_u64 last = io.sectors - 1;
  for (int s = 0; s < 512 * 512; s++)
    {
      int a = s >> 9, b = s & 511;
      /* a and b: priority (4 bits) | tries (4 bits) | successful (1 bit), high to low */
      gp_u64 flags[2];
      int st_[2] = { a, b };
      for (int k = 0; k < 2; k++)
        flags[k] = ((gp_u64) (st_[k] >> 5) << 48) | ((gp_u64) ((st_[k] >> 1) & 15) << 52)
                   | ((gp_u64) (st_[k] & 1) << 56);
      /* Restore what a decision may have written: the tables (header + 128 entries). */
      memcpy (m.head, base.head, 40 * 4096 < REGION ? 40 * 4096 : REGION);
      memcpy (m.tail + REGION - 40 * 4096, base.tail + REGION - 40 * 4096, 40 * 4096);
      if (set_flags (&m, ss, last, flags))
        die (argv[0], "the image's tables are not valid or lack two BOOT partitions");
      printf ("%d %d %d %d %d %d ", a >> 5, (a >> 1) & 15, a & 1, b >> 5, (b >> 1) & 15, b & 1);
      struct gp_choice c;
      int status = gp_next (&io, &c, 0);
      if (status == GP_NOTHING)
        {
          printf ("none\n");
          continue;
        }
      if (status != GP_OK)
        {
          printf ("ERROR %s\n", gp_strerror (status));
          continue;
        }
      gp_u64 p[2];
      if (get_flags (&m, ss, last, p))
        {
          printf ("BAD copies invalid or different after the write\n");
          continue;
        }
      printf ("%c %llu %llu %llu %llu %llu %llu\n", 'A' + c.set,
              (unsigned long long) ((p[0] >> 52) & 15), (unsigned long long) ((p[1] >> 52) & 15),
              (unsigned long long) ((p[0] >> 56) & 1), (unsigned long long) ((p[1] >> 56) & 1),
              (unsigned long long) ((p[0] >> 48) & 15), (unsigned long long) ((p[1] >> 48) & 15));
    }
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc >= 2 && strcmp (argv[1], "next") == 0)
    return cmd_next (argc - 2, argv + 2);
  if (argc >= 2 && strcmp (argv[1], "table") == 0)
    return cmd_table (argc - 2, argv + 2);
  fprintf (stderr, "usage: %s next IMAGE [--dry-run] [--trace FILE] | table IMAGE\n", prog);
  return 10;
}
