using System.Diagnostics;
using Bough.Contracts;
using Bough.TestSupport.Registry;

namespace Bough.Integration.Tests;

/// <summary>
/// The real `bough` CLI for templates, images and exec --user, against the shared daemon.
/// Each test uses its own template names, so they do not depend on one another's leftovers.
/// </summary>
[Collection("daemon")]
public sealed class CliImageTests(DaemonFixture f)
{
    private Task<CliRun> Bough(params string[] args) => CliRunner.RunAsync(f.Daemon, args);

    [Fact]
    public async Task Template_create_ls_show_then_create_from_it_and_rm()
    {
        var name = "cli-tpl-" + Guid.NewGuid().ToString("N")[..6];
        // The start command leaves a process and a file behind; a sandbox forked from the
        // template must see both without running anything itself.
        var created = await Bough("template", "create", name, "--image", "base",
            "--start", "sh -c 'echo \"warm up\" > /tmp/started; exec sleep 100000'",
            "--ready", "test -s /tmp/started", "--timeout", "120", "--env", "TPL_LEVEL=from-template");
        Assert.True(created.Code == 0, created.ToString());
        Assert.Equal(name + "\n", created.Out);

        var ls = await Bough("template", "ls");
        Assert.Equal(0, ls.Code);
        Assert.Contains(name, ls.Out);
        Assert.DoesNotContain("\u001b[", ls.Out);

        var show = await Bough("template", "show", name);
        Assert.Equal(0, show.Code);
        // Shown in the shell-quoted form --start accepts, so it reads back as the same argv.
        Assert.Contains("start: sh -c 'echo \"warm up\" > /tmp/started; exec sleep 100000'", show.Out);
        Assert.Contains("ready: test -s /tmp/started", show.Out);
        Assert.Contains("env: TPL_LEVEL=from-template", show.Out);

        var fork = await Bough("create", "--template", name);
        Assert.True(fork.Code == 0, fork.ToString());
        var id = fork.Out.Trim();
        Assert.StartsWith("sb-", id);
        try
        {
            // The start command's process came along in the snapshot (found by its argv in /proc).
            var state = await Bough("exec", id, "--", "sh", "-c",
                "cat /tmp/started; echo $TPL_LEVEL; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done");
            Assert.True(state.Code == 0, state.ToString());
            Assert.StartsWith("warm up\nfrom-template\n", state.Out);
            Assert.Contains("\nsleep 100000 \n", state.Out);

            var sandbox = await f.Daemon.Client.GetSandboxAsync(id);
            Assert.Equal(name, sandbox.Template);

            var inUse = await Bough("template", "rm", name);
            Assert.Equal(1, inUse.Code);
            Assert.Contains(ErrorCodes.TemplateInUse, inUse.Err);
        }
        finally
        {
            await Bough("rm", id);
        }

        var rm = await Bough("template", "rm", name);
        Assert.True(rm.Code == 0, rm.ToString());
        Assert.DoesNotContain(name, (await Bough("template", "ls")).Out);

        var gone = await Bough("template", "show", name);
        Assert.Equal(1, gone.Code);
        Assert.Contains(ErrorCodes.TemplateNotFound, gone.Err);
    }

    [Fact]
    public async Task Create_with_a_count_forks_several_sandboxes_from_a_template()
    {
        var name = "cli-tpl-n-" + Guid.NewGuid().ToString("N")[..6];
        var created = await Bough("template", "create", name, "--image", "base", "--json");
        Assert.True(created.Code == 0, created.ToString());
        Assert.Contains($"\"name\": \"{name}\"", created.Out);

        var forks = await Bough("create", "--template", name, "-n", "2");
        Assert.True(forks.Code == 0, forks.ToString());
        var ids = forks.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        try
        {
            Assert.Equal(2, ids.Length);
            Assert.NotEqual(ids[0], ids[1]);
            foreach (var id in ids)
            {
                var hostname = await Bough("exec", id, "--", "hostname");
                Assert.Equal(id + "\n", hostname.Out);
            }
        }
        finally
        {
            foreach (var id in ids)
                await Bough("rm", id);
            await Bough("template", "rm", name);
        }
    }

    [Fact]
    public async Task Exec_user_runs_the_command_as_that_user()
    {
        var byName = await Bough("exec", "--user", "nobody", f.Primary.Id, "--", "sh", "-c", "id -u; id -g");
        Assert.True(byName.Code == 0, byName.ToString());
        Assert.Equal("65534\n65534\n", byName.Out);

        var byId = await Bough("exec", "-u", "1234:2345", f.Primary.Id, "--", "sh", "-c", "id -u; id -g");
        Assert.True(byId.Code == 0, byId.ToString());
        Assert.Equal("1234\n2345\n", byId.Out);

        var root = await Bough("exec", f.Primary.Id, "--", "id", "-u");
        Assert.Equal("0\n", root.Out);

        var unknown = await Bough("exec", "--user", "no-such-user", f.Primary.Id, "--", "true");
        Assert.NotEqual(0, unknown.Code);
        Assert.StartsWith("error:", unknown.Err.Trim());
    }

    [Fact]
    public async Task Images_lists_and_shows_the_base_image()
    {
        var ls = await Bough("images");
        Assert.Equal(0, ls.Code);
        var lines = ls.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("NAME", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("base ", StringComparison.Ordinal));

        var json = await Bough("images", "--json");
        Assert.Equal(0, json.Code);
        Assert.Contains("\"name\": \"base\"", json.Out);

        var show = await Bough("images", "show", "base");
        Assert.Equal(0, show.Code);
        Assert.Contains("name: base", show.Out);
        Assert.Contains("state: ready", show.Out);
    }

    [Fact]
    public async Task Bad_usage_and_unknown_names_fail_clearly()
    {
        var unterminated = await Bough("template", "create", "x", "--image", "base", "--start", "sh -c 'echo");
        Assert.Equal(2, unterminated.Code);
        Assert.Contains("unterminated", unterminated.Err);

        var both = await Bough("create", "--template", "x", "--image", "base");
        Assert.Equal(2, both.Code);

        var noImage = await Bough("template", "create", "x");
        Assert.Equal(2, noImage.Code);

        var countWithoutSource = await Bough("create", "-n", "2");
        Assert.Equal(2, countWithoutSource.Code);

        var rmi = await Bough("rmi", "example.invalid/none/such:1");
        Assert.Equal(1, rmi.Code);
        Assert.Contains(ErrorCodes.ImageNotFound, rmi.Err);
        Assert.Single(rmi.Err.Trim().Split('\n'));

        var baseInUse = await Bough("images", "rm", "base");
        Assert.Equal(1, baseInUse.Code);

        var noTemplate = await Bough("create", "--template", "no-such-template");
        Assert.Equal(1, noTemplate.Code);
        Assert.Contains(ErrorCodes.TemplateNotFound, noTemplate.Err);
    }
}

/// <summary>
/// `bough pull`, `images`, `images show`, `rmi` and the image's exec defaults through the CLI,
/// against a real docker-registry the images are pushed to with skopeo.
/// </summary>
[Collection("daemon")]
public sealed class CliPullTests(DaemonFixture f, RegistryFixture reg) : IClassFixture<RegistryFixture>
{
    private Task<CliRun> Bough(params string[] args) => CliRunner.RunAsync(f.Daemon, args);

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public async Task Pull_quiet_prints_the_name_then_images_lists_it_and_rmi_removes_it()
    {
        var (reference, built) = await reg.PushImageAsync(Unique("cli/bb") + ":1", TestImages.Busybox());

        var pull = await Bough("pull", "--insecure", "--quiet", reference);
        Assert.True(pull.Code == 0, pull.ToString());
        Assert.Equal(reference + "\n", pull.Out);
        Assert.Equal("", pull.Err);

        var ls = await Bough("images");
        Assert.Equal(0, ls.Code);
        var row = Assert.Single(ls.Out.Split('\n'), l => l.StartsWith(reference + " ", StringComparison.Ordinal));
        Assert.Contains("registry", row);
        Assert.Contains(built.Manifest.Hex[..12], row);

        var show = await Bough("images", "show", reference);
        Assert.True(show.Code == 0, show.ToString());
        Assert.Contains($"digest: {built.Manifest.Digest}", show.Out);
        Assert.Contains("env: GREETING=hello world", show.Out);
        Assert.Contains("workdir: /home/app", show.Out);
        Assert.Contains("user: app", show.Out);
        Assert.Contains("cmd: [\"/bin/sh\",\"-c\",\"echo hi\"]", show.Out);

        var rmi = await Bough("rmi", reference);
        Assert.True(rmi.Code == 0, rmi.ToString());
        Assert.Equal(reference + "\n", rmi.Out);
        Assert.DoesNotContain(reference, (await Bough("images")).Out);
        var gone = await Bough("images", "show", reference);
        Assert.Equal(1, gone.Code);
        Assert.Contains(ErrorCodes.ImageNotFound, gone.Err);
    }

    [Fact]
    public async Task Pull_without_quiet_reports_progress_on_stderr_and_ends_with_name_digest_and_size()
    {
        var (reference, built) = await reg.PushImageAsync(Unique("cli/progress") + ":1", TestImages.Busybox(
            new LayerSpec([TarItem.Dir("data"), TarItem.File("data/big.bin", new byte[2 << 20])])));
        // By digest: the '@' and ':' in the name must survive the trip through the URL.
        var byDigest = $"{reference[..reference.LastIndexOf(':')]}@{built.Manifest.Digest}";

        var pull = await Bough("pull", "--insecure", byDigest);
        try
        {
            Assert.True(pull.Code == 0, pull.ToString());
            var lines = pull.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3, lines.Length);
            var name = lines[0];
            Assert.Contains('@', name);
            Assert.Equal($"digest: {built.Manifest.Digest}", lines[1]);
            Assert.Matches(@"^size: [0-9.]+ (KiB|MiB) content", lines[2]);
            // Plain progress lines (stderr is a pipe): each layer is named with its outcome.
            foreach (var layer in built.Layers)
                Assert.Contains($"layer {layer.Hex[..12]} ", pull.Err);
            Assert.DoesNotContain("\u001b[", pull.Err);

            var show = await Bough("images", "show", "--json", name);
            Assert.True(show.Code == 0, show.ToString());
            Assert.Contains(built.Manifest.Digest, show.Out);
        }
        finally
        {
            if (pull.Code == 0)
                await Bough("rmi", pull.Out.Split('\n')[0]);
        }
    }

    [Fact]
    public async Task Pull_of_an_unknown_reference_exits_1_with_the_error_code()
    {
        var r = await Bough("pull", "--insecure", $"{reg.Registry.Host}/cli/does-not-exist:1");
        Assert.Equal(1, r.Code);
        Assert.Equal("", r.Out);
        var error = r.Err.Split('\n').Last(l => l.Length > 0);
        Assert.StartsWith("error:", error);
        Assert.Contains(ErrorCodes.ImageRefNotFound, error);

        var quiet = await Bough("pull", "-q", "--insecure", $"{reg.Registry.Host}/cli/does-not-exist:2");
        Assert.Equal(1, quiet.Code);
        Assert.Contains(ErrorCodes.ImageRefNotFound, quiet.Err);
        Assert.Single(quiet.Err.Trim().Split('\n'));
    }

    [Fact]
    public async Task Images_import_takes_a_relative_layout_path_and_prints_the_name()
    {
        // Imports read only from the daemon's import directory (<data dir>/import).
        var work = Path.Combine(f.Daemon.DataDir, "import", Unique("it-cli-import"));
        Directory.CreateDirectory(work);
        var name = Unique("cli/imported") + ":v1";
        try
        {
            var b = new OciLayoutBuilder(Path.Combine(work, "layout"));
            var img = b.AddImage(TestImages.Busybox());
            b.Tag(img.Manifest, "v1");

            // Relative to the CLI's directory; the daemon (another cwd) must get it made absolute.
            var r = await CliRunner.RunInAsync(f.Daemon, work, "images", "import", "layout", "--name", name, "-q");
            Assert.True(r.Code == 0, r.ToString());
            Assert.Equal(name + "\n", r.Out);

            var row = Assert.Single((await Bough("images")).Out.Split('\n'), l => l.StartsWith(name + " ", StringComparison.Ordinal));
            Assert.Contains("archive", row);
            Assert.Contains(img.Manifest.Hex[..12], row);

            var missing = await CliRunner.RunInAsync(f.Daemon, work, "images", "import", "nothing-here");
            Assert.Equal(1, missing.Code);
            Assert.Contains(ErrorCodes.InvalidRequest, missing.Err);
        }
        finally
        {
            await Bough("rmi", name);
        }
    }

    [Fact]
    public async Task Exec_in_a_pulled_image_uses_its_user_and_default_command()
    {
        var (reference, _) = await reg.PushImageAsync(Unique("cli/exec") + ":1", TestImages.Busybox());
        Assert.Equal(0, (await Bough("pull", "-q", "--insecure", reference)).Code);
        var create = await Bough("create", "--image", reference);
        Assert.True(create.Code == 0, create.ToString());
        var id = create.Out.Trim();
        try
        {
            // The image's user is app (1000); --user overrides it per exec.
            Assert.Equal("1000\n", (await Bough("exec", id, "--", "/bin/busybox", "id", "-u")).Out);
            Assert.Equal("0\n", (await Bough("exec", "--user", "root", id, "--", "/bin/busybox", "id", "-u")).Out);
            // No command: the image's Cmd (sh -c "echo hi").
            var dflt = await Bough("exec", id);
            Assert.True(dflt.Code == 0, dflt.ToString());
            Assert.Equal("hi\n", dflt.Out);

            // In use by the sandbox: rmi refuses, naming why.
            var inUse = await Bough("rmi", reference);
            Assert.Equal(1, inUse.Code);
            Assert.Contains(ErrorCodes.ImageInUse, inUse.Err);
        }
        finally
        {
            await Bough("rm", id);
            await Bough("rmi", reference);
        }
    }
}

/// <summary>What one CLI run left behind.</summary>
public sealed record CliRun(int Code, string Out, string Err)
{
    public override string ToString() => $"exit {Code}\nstdout: {Out}\nstderr: {Err}";
}

/// <summary>Runs the built CLI (bough.dll next to the tests) as a user would, piped, no colour.</summary>
public static class CliRunner
{
    /// <summary>Generous: a template create boots and snapshots a VM under TCG on a busy host.</summary>
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    public static Task<CliRun> RunAsync(DaemonProcess daemon, params string[] args) => RunInAsync(daemon, null, args);

    /// <summary>Runs in <paramref name="workingDir"/>, for commands that resolve relative paths.</summary>
    /// <remarks>The CLI finds the daemon's token by itself, in the data dir <c>BOUGH_HOME</c> names.</remarks>
    public static async Task<CliRun> RunInAsync(DaemonProcess daemon, string? workingDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDir ?? "",
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "bough.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        daemon.ConfigureCli(psi);
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(Limit);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"bough {string.Join(' ', args)} ran past {Limit}");
        }
        return new CliRun(p.ExitCode, await stdout, await stderr);
    }
}
