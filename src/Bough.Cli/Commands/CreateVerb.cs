using System.CommandLine;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary><c>bough create</c>: starts a sandbox (from an image, a snapshot or a template) and prints its id; with -n, several.</summary>
internal static class CreateVerb
{
    public static Command Build(CliContext context)
    {
        var image = new Option<string?>("--image") { Description = "Image to boot (default: the daemon's, 'base')", HelpName = "NAME" };
        var vcpus = NumericOptions.Integer("--vcpus", "Virtual CPUs", "N");
        var memory = NumericOptions.Integer("--memory", "Memory in MiB", "MiB");
        var env = new Option<string[]>("--env", "-e") { Description = "Environment for every exec (repeatable)", HelpName = "KEY=VALUE" };
        var meta = new Option<string[]>("--meta") { Description = "Metadata label (repeatable)", HelpName = "KEY=VALUE" };
        var policy = new PolicyOptions();
        var ports = NumericOptions.Integers("--port", "Guest port to publish on the host (repeatable)", "PORT", "-p");
        var snapshot = new Option<string?>("--snapshot") { Description = "Start from this snapshot (id or tag) instead of booting an image", HelpName = "SNAPSHOT" };
        var template = new Option<string?>("--template") { Description = "Fork this template's warm snapshot instead of booting an image", HelpName = "NAME" };
        var count = NumericOptions.Integer("--count", "With --snapshot or --template: how many sandboxes to start (prints one id per line)", "N", "-n");
        var json = new Option<bool>("--json") { Description = "Print the sandbox as JSON instead of its id" };
        var cold = new Option<bool>("--cold")
        {
            Description = "Boot the image's kernel even when a boot snapshot of this image and shape exists (by default a create restores from it)",
        };

        var command = new Command("create", "Create and boot a sandbox, or start some from a snapshot or template; prints the id(s)")
        {
            image, vcpus, memory, env, meta, ports, snapshot, template, count, cold, json,
        };
        foreach (var o in policy.Lifetime.Concat(policy.Egress)) command.Options.Add(o);
        context.SetAction(command, async (parse, client, ct) =>
        {
            var portList = parse.GetValue(ports);
            var request = new CreateSandboxRequest
            {
                Image = parse.GetValue(image),
                Vcpus = parse.GetOptional(vcpus),
                MemoryMiB = parse.GetOptional(memory),
                Env = KeyValues.Parse("--env", parse.GetValue(env)),
                Metadata = KeyValues.Parse("--meta", parse.GetValue(meta)),
                // Null leaves the choice to the daemon's default.
                Internet = policy.Internet(parse),
                Network = policy.Network(parse),
                TimeoutSeconds = policy.TimeoutSeconds(parse),
                OnTimeout = policy.OnTimeoutAction(parse),
                Ports = portList is { Length: > 0 } ? [.. portList] : null,
                Snapshot = parse.GetValue(snapshot),
                Template = parse.GetValue(template),
                // Null leaves it to the daemon (restore when it can).
                ColdBoot = parse.GetValue(cold) ? true : null,
            };
            if (request.ColdBoot == true && (request.Template is not null || request.Snapshot is not null))
                throw new UsageException("--cold boots an image; --snapshot and --template always start from a snapshot");
            if (request.Template is not null && (request.Image is not null || request.Snapshot is not null))
                throw new UsageException("--template starts from the template's own image and snapshot; leave out --image and --snapshot");

            if (parse.GetOptional(count) is { } n)
            {
                var sandboxes = (request.Template, request.Snapshot) switch
                {
                    ({ } t, _) => await client.CreateSandboxesFromTemplateAsync(t, n, request, ct),
                    (_, { } s) => await client.CreateSandboxesFromSnapshotAsync(s, n, request, ct),
                    _ => throw new UsageException("-n/--count needs --snapshot or --template (several sandboxes are started from one snapshot)"),
                };
                if (parse.GetValue(json))
                    context.WriteJson(sandboxes);
                else
                    foreach (var s in sandboxes)
                        context.Terminal.Out.WriteLine(s.Id);
                return ExitCodes.Ok;
            }

            var sandbox = await client.CreateSandboxAsync(request, ct);
            if (parse.GetValue(json))
                context.WriteJson(sandbox);
            else
                context.Terminal.Out.WriteLine(sandbox.Id);
            return ExitCodes.Ok;
        });
        return command;
    }
}
