// Bough runs on Linux only (QEMU microvm hosts); the Unix file-mode APIs below are what it needs.
#pragma warning disable CA1416
using System.Formats.Tar;

namespace Bough.Images.Oci;

/// <summary>
/// Applies the entries of one layer to a root directory. The layer is hostile input, so:
/// names are normalised and any that climbs out of the root is rejected; no entry is ever written
/// through a symbolic link (every parent component must be a real directory, checked with lstat
/// semantics, and files are created with O_EXCL so a final-component link cannot redirect them);
/// hard-link targets must resolve inside the root. Nothing else writes to the root meanwhile, so the
/// checks are not racing anyone.
/// </summary>
internal sealed class LayerApplier(string root, string digest, bool applyOwnership)
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueMarker = ".wh..wh..opq";

    /// <summary>Paths this layer created or wrote into (and all their ancestors): an opaque marker keeps them.</summary>
    private readonly HashSet<string> _touched = new(StringComparer.Ordinal);
    /// <summary>Directory metadata is applied after the layer: writing children would change the mtime, and a read-only mode would block them.</summary>
    private readonly List<(string Rel, UnixFileMode Mode, int Uid, int Gid, DateTimeOffset MTime)> _dirs = [];
    private int _files, _directories, _symlinks, _hardLinks, _whiteouts, _skipped;

    private enum Kind { None, File, Directory, Symlink }

    public async Task ApplyAsync(TarEntry entry, CancellationToken ct)
    {
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes
            or TarEntryType.LongLink or TarEntryType.LongPath)
            return;

        var rel = Normalise(entry.Name, entry.Name);
        var name = rel.Length == 0 ? "" : rel[(rel.LastIndexOf('/') + 1)..];
        var parent = rel.Contains('/') ? rel[..rel.LastIndexOf('/')] : "";

        if (name == OpaqueMarker)
        {
            EnsureParents(rel, entry.Name);
            ClearOpaque(parent);
            _whiteouts++;
            return;
        }
        if (name.StartsWith(WhiteoutPrefix + WhiteoutPrefix, StringComparison.Ordinal))
            return; // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content
        if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            var victim = name[WhiteoutPrefix.Length..];
            if (victim is "" or "." or "..")
                throw Rejected(entry.Name, "whiteout names no file");
            ApplyWhiteout(parent.Length == 0 ? victim : parent + "/" + victim, entry.Name);
            _whiteouts++;
            return;
        }
        if (rel.Length == 0)
        {
            if (entry.EntryType == TarEntryType.Directory) return; // "./": the root itself stays as the caller made it
            throw Rejected(entry.Name, "names the root directory but is not a directory");
        }

        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                EnsureParents(rel, entry.Name);
                CreateDirectory(rel);
                _dirs.Add((rel, entry.Mode, entry.Uid, entry.Gid, entry.ModificationTime));
                _directories++;
                break;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                EnsureParents(rel, entry.Name);
                await WriteFileAsync(rel, entry, ct);
                _files++;
                break;
            case TarEntryType.SymbolicLink:
                EnsureParents(rel, entry.Name);
                CreateSymlink(rel, entry);
                _symlinks++;
                break;
            case TarEntryType.HardLink:
                EnsureParents(rel, entry.Name);
                CreateHardLink(rel, entry);
                _hardLinks++;
                break;
            default:
                // Character/block devices and fifos (and exotic GNU types): the guest kernel provides
                // /dev; creating device nodes from an image would be a privilege hole anyway.
                _skipped++;
                break;
        }
    }

    public LayerApplyStats Finish()
    {
        foreach (var d in Enumerable.Reverse(_dirs))
        {
            var full = Full(d.Rel);
            if (KindOf(full) != Kind.Directory) continue; // replaced or whited out later in the layer
            SetOwnerModeTime(full, d.Uid, d.Gid, d.Mode, d.MTime);
        }
        return new LayerApplyStats(_files, _directories, _symlinks, _hardLinks, _whiteouts, _skipped);
    }

    /// <summary>
    /// Normalises a tar name to a root-relative path ("" for the root): a leading "/" or "./" is relative
    /// to the root (as Docker treats it), "." components vanish, ".." pops a component, and popping past
    /// the root rejects the layer.
    /// </summary>
    internal string Normalise(string name, string entryName)
    {
        var stack = new List<string>();
        foreach (var part in name.Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == "..")
            {
                if (stack.Count == 0) throw Rejected(entryName, "its path climbs out of the image root");
                stack.RemoveAt(stack.Count - 1);
                continue;
            }
            if (part.Contains('\0')) throw Rejected(entryName, "its path contains a NUL character");
            stack.Add(part);
        }
        return string.Join('/', stack);
    }

    private string Full(string rel) => rel.Length == 0 ? root : root + "/" + rel;

    /// <summary>
    /// Makes every ancestor of <paramref name="rel"/> a real directory: missing ones are created, a file in
    /// the way is replaced, and a symbolic link rejects the layer (writing through it could leave the root).
    /// </summary>
    private void EnsureParents(string rel, string entryName)
    {
        var parts = rel.Split('/');
        var prefix = "";
        for (var i = 0; i < parts.Length - 1; i++)
        {
            prefix = prefix.Length == 0 ? parts[i] : prefix + "/" + parts[i];
            var full = Full(prefix);
            switch (KindOf(full))
            {
                case Kind.Symlink:
                    throw Rejected(entryName, $"its parent '{prefix}' is a symbolic link; entries are never written through links");
                case Kind.File:
                    File.Delete(full);
                    CreateImplicitDirectory(full);
                    break;
                case Kind.None:
                    CreateImplicitDirectory(full);
                    break;
            }
            _touched.Add(prefix);
        }
    }

    /// <summary>
    /// A directory the layer implies but does not list (<c>a/b/file</c> without <c>a/</c>): 0755, as Docker and
    /// containerd make it. Set explicitly, because mkdir's mode is cut by the process umask (077 in the daemon),
    /// which would make it owner-only inside the guest.
    /// </summary>
    private static void CreateImplicitDirectory(string full)
    {
        Directory.CreateDirectory(full);
        File.SetUnixFileMode(full, ImplicitDirectoryMode);
    }

    internal const UnixFileMode ImplicitDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                                        UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                                                        UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>Like <see cref="EnsureParents"/> but creates nothing: false when a parent does not exist.</summary>
    private bool ParentsExist(string rel, string entryName)
    {
        var parts = rel.Split('/');
        var prefix = "";
        for (var i = 0; i < parts.Length - 1; i++)
        {
            prefix = prefix.Length == 0 ? parts[i] : prefix + "/" + parts[i];
            switch (KindOf(Full(prefix)))
            {
                case Kind.Symlink:
                    throw Rejected(entryName, $"its parent '{prefix}' is a symbolic link; entries are never resolved through links");
                case Kind.File or Kind.None:
                    return false;
            }
        }
        return true;
    }

    private void ApplyWhiteout(string victimRel, string entryName)
    {
        if (_touched.Contains(victimRel)) return; // a whiteout hides lower layers only
        if (!ParentsExist(victimRel, entryName)) return;
        RemoveAny(Full(victimRel));
    }

    /// <summary>Empties a directory of what lower layers put there, keeping what this layer wrote.</summary>
    private void ClearOpaque(string dirRel)
    {
        var full = Full(dirRel);
        if (KindOf(full) != Kind.Directory) return;
        foreach (var child in Directory.EnumerateFileSystemEntries(full).ToList())
        {
            var childRel = dirRel.Length == 0 ? Path.GetFileName(child) : dirRel + "/" + Path.GetFileName(child);
            if (!_touched.Contains(childRel)) RemoveAny(child);
            else if (KindOf(child) == Kind.Directory) ClearOpaque(childRel);
        }
    }

    private void CreateDirectory(string rel)
    {
        var full = Full(rel);
        var kind = KindOf(full);
        if (kind != Kind.Directory)
        {
            if (kind != Kind.None) RemoveAny(full);
            Directory.CreateDirectory(full); // its own mode is applied in Finish, after its children are written
        }
        _touched.Add(rel);
    }

    private async Task WriteFileAsync(string rel, TarEntry entry, CancellationToken ct)
    {
        var full = Full(rel);
        RemoveAny(full);
        // CreateNew = O_CREAT|O_EXCL: fails rather than follows if a link appeared at the name.
        await using (var fs = new FileStream(full, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None,
            Options = FileOptions.Asynchronous, PreallocationSize = entry.Length,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            if (entry.DataStream is { } data) await data.CopyToAsync(fs, ct);
        }
        _touched.Add(rel);
        SetOwnerModeTime(full, entry.Uid, entry.Gid, entry.Mode, entry.ModificationTime);
    }

    private void CreateSymlink(string rel, TarEntry entry)
    {
        if (string.IsNullOrEmpty(entry.LinkName))
            throw Rejected(entry.Name, "symbolic link without a target");
        var full = Full(rel);
        RemoveAny(full);
        File.CreateSymbolicLink(full, entry.LinkName); // target verbatim: it is resolved inside the guest
        _touched.Add(rel);
        if (applyOwnership) PosixFs.LChown(full, entry.Uid, entry.Gid);
        PosixFs.SetMTime(full, entry.ModificationTime);
    }

    private void CreateHardLink(string rel, TarEntry entry)
    {
        if (string.IsNullOrEmpty(entry.LinkName))
            throw Rejected(entry.Name, "hard link without a target");
        var targetRel = Normalise(entry.LinkName, entry.Name);
        if (targetRel.Length == 0 || !ParentsExist(targetRel, entry.Name))
            throw Rejected(entry.Name, $"hard link target '{entry.LinkName}' does not exist in the image");
        var target = Full(targetRel);
        var kind = KindOf(target);
        if (kind is Kind.None or Kind.Directory)
            throw Rejected(entry.Name, $"hard link target '{entry.LinkName}' is {(kind == Kind.None ? "missing" : "a directory")}");
        if (targetRel == rel) return;
        var full = Full(rel);
        RemoveAny(full);
        PosixFs.Link(target, full); // link(2) does not follow a final symlink; its parents were checked above
        _touched.Add(rel);
    }

    private void SetOwnerModeTime(string full, int uid, int gid, UnixFileMode mode, DateTimeOffset mtime)
    {
        // chown before chmod: chown clears setuid/setgid bits.
        if (applyOwnership) PosixFs.LChown(full, uid, gid);
        File.SetUnixFileMode(full, mode);
        PosixFs.SetMTime(full, mtime);
    }

    /// <summary>Removes a file, link (not its target) or directory tree (links inside are removed, not followed).</summary>
    private static void RemoveAny(string full)
    {
        switch (KindOf(full))
        {
            case Kind.Directory:
                Directory.Delete(full, recursive: true);
                break;
            case Kind.File or Kind.Symlink:
                File.Delete(full);
                break;
        }
    }

    /// <summary>lstat-like: a symbolic link (even to a directory or nowhere) is a link.</summary>
    private static Kind KindOf(string full)
    {
        var info = new FileInfo(full);
        if (info.LinkTarget is not null) return Kind.Symlink;
        if (Directory.Exists(full)) return Kind.Directory;
        return info.Exists ? Kind.File : Kind.None;
    }

    private ImageException Rejected(string entryName, string why) =>
        new("layer_rejected", $"layer {digest}: entry '{entryName}' rejected: {why}");
}
