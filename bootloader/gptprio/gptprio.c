/*
 *  gptprio: GRUB command `gptprio.next`, choosing the A/B partition set to boot.
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

/* GRUB glue: disk access and variables.  The rule and the GPT handling are in gptprio_core.c.

   gptprio.next [-d VAR] [-u VAR] [-n] [DISK]
     DISK   the disk, e.g. hd0, (hd0) or (hd0,gpt2)/path (the partition part is dropped);
            default: the disk GRUB was loaded from ($cmdpath), else the disk of $root.
     -d VAR GRUB device of the chosen BOOT partition, e.g. hd0,gpt3 (default VAR: boot_dev)
     -u VAR its unique partition GUID, lowercase 8-4-4-4-12 (default VAR: boot_uuid)
     -n     decide only, do not decrement tries_left (for tests)
   Also sets gptprio_set (A|B), gptprio_boot_part, gptprio_root_part, gptprio_hash_part,
   gptprio_root_uuid, gptprio_hash_uuid, gptprio_tries_after, gptprio_wrote (0|1). */

#include <grub/types.h>
#include <grub/misc.h>
#include <grub/mm.h>
#include <grub/err.h>
#include <grub/dl.h>
#include <grub/disk.h>
#include <grub/env.h>
#include <grub/extcmd.h>
#include <grub/i18n.h>

#include "gptprio_core.h"

GRUB_MOD_LICENSE ("GPLv3+");

static const struct grub_arg_option options[] = {
  {"set-device", 'd', 0, N_("Set a variable to the chosen BOOT partition's device."),
   N_("VARNAME"), ARG_TYPE_STRING},
  {"set-uuid", 'u', 0, N_("Set a variable to the chosen BOOT partition's GUID."),
   N_("VARNAME"), ARG_TYPE_STRING},
  {"dry-run", 'n', 0, N_("Choose only; do not decrement tries."), 0, 0},
  {0, 0, 0, 0, 0, 0}
};

static int
disk_read (void *ctx, gp_u64 offset, gp_u32 len, void *buf)
{
  grub_disk_t disk = ctx;

  return grub_disk_read (disk, offset >> GRUB_DISK_SECTOR_BITS,
                         offset & (GRUB_DISK_SECTOR_SIZE - 1), len, buf) != GRUB_ERR_NONE;
}

static int
disk_write (void *ctx, gp_u64 offset, gp_u32 len, const void *buf)
{
  grub_disk_t disk = ctx;

  grub_dprintf ("gptprio", "write %llu+%u\n", (unsigned long long) offset, len);
  return grub_disk_write (disk, offset >> GRUB_DISK_SECTOR_BITS,
                          offset & (GRUB_DISK_SECTOR_SIZE - 1), len, buf) != GRUB_ERR_NONE;
}

static grub_err_t
set_num (const char *name, unsigned long v)
{
  char buf[24];

  grub_snprintf (buf, sizeof (buf), "%lu", v);
  return grub_env_set (name, buf);
}

static grub_err_t
grub_cmd_next (grub_extcmd_context_t ctxt, int argc, char **args)
{
  struct grub_arg_list *state = ctxt->state;
  const char *dev_var = state[0].set ? state[0].arg : "boot_dev";
  const char *uuid_var = state[1].set ? state[1].arg : "boot_uuid";
  const char *src;
  char *name, *comma, *value;
  grub_disk_t disk;
  struct gp_io io;
  struct gp_choice choice;
  char guid[37];
  int status;

  if (argc > 1)
    return grub_error (GRUB_ERR_BAD_ARGUMENT, N_("one argument expected"));
  if (argc == 1)
    src = args[0];
  else
    {
      /* The device GRUB was loaded from ($cmdpath: "(hd0)" on BIOS, "(hd0,gpt2)/EFI/BOOT" on
         UEFI), else $root. */
      src = grub_env_get ("cmdpath");
      if (!src || !*src)
        src = grub_env_get ("root");
      if (!src || !*src)
        return grub_error (GRUB_ERR_BAD_ARGUMENT, N_("no disk given, $cmdpath and $root unset"));
    }
  if (src[0] == '(')
    {
      const char *close = grub_strchr (src, ')');
      name = close ? grub_strndup (src + 1, close - src - 1) : grub_strdup (src + 1);
    }
  else
    name = grub_strdup (src);
  if (!name)
    return grub_errno;
  comma = grub_strchr (name, ',');
  if (comma)
    *comma = 0;

  disk = grub_disk_open (name);
  if (!disk)
    {
      grub_free (name);
      return grub_errno;
    }
  if (disk->total_sectors == GRUB_DISK_SIZE_UNKNOWN)
    {
      grub_disk_close (disk);
      grub_free (name);
      return grub_error (GRUB_ERR_BAD_DEVICE, N_("gptprio: size of disk `%s' unknown"), name);
    }
  io.ctx = disk;
  io.sector_size = 1U << disk->log_sector_size;
  io.sectors = disk->total_sectors;
  io.read = disk_read;
  io.write = disk_write;
  io.flush = 0; /* BIOS int13 and EFI WriteBlocks return once the device has the data */

  status = gp_next (&io, &choice, state[2].set);
  grub_disk_close (disk);
  grub_errno = GRUB_ERR_NONE;
  if (status != GP_OK)
    {
      grub_error (status == GP_NOTHING ? GRUB_ERR_UNKNOWN_DEVICE : GRUB_ERR_BAD_PART_TABLE,
                  "gptprio: %s: %s", name, gp_strerror (status));
      grub_free (name);
      return grub_errno;
    }

  value = grub_xasprintf ("%s,gpt%u", name, choice.boot.number);
  grub_free (name);
  if (!value)
    return grub_errno;
  grub_env_set (dev_var, value);
  grub_free (value);
  gp_guid_text (choice.boot.unique_guid, guid);
  grub_env_set (uuid_var, guid);
  grub_env_set ("gptprio_set", choice.set == 0 ? "A" : choice.set == 1 ? "B" : "?");
  set_num ("gptprio_boot_part", choice.boot.number);
  set_num ("gptprio_root_part", choice.root.number);
  set_num ("gptprio_hash_part", choice.hash.number);
  gp_guid_text (choice.root.unique_guid, guid);
  grub_env_set ("gptprio_root_uuid", guid);
  gp_guid_text (choice.hash.unique_guid, guid);
  grub_env_set ("gptprio_hash_uuid", guid);
  set_num ("gptprio_tries_after", choice.tries_after);
  set_num ("gptprio_wrote", (unsigned long) choice.wrote);
  return grub_errno;
}

static grub_extcmd_t cmd_next;

GRUB_MOD_INIT (gptprio)
{
  cmd_next = grub_register_extcmd ("gptprio.next", grub_cmd_next, 0,
                                   N_("[-d VAR] [-u VAR] [-n] [DISK]"),
                                   N_("Choose the A/B set to boot by GPT priority bits; "
                                      "decrement its tries."),
                                   options);
}

GRUB_MOD_FINI (gptprio)
{
  grub_unregister_extcmd (cmd_next);
}
