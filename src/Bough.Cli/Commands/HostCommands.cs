using System.CommandLine;

namespace Bough.Cli.Commands;

internal static class HostCommands { public static void Register(RootCommand root) { } }
