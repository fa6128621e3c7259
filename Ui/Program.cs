using Assistant.Ui;

WindowsConsole.OwnStandardError();  // before Console.Error exists: see WindowsConsole
return await Cli.RunAsync(args, Console.Out, Console.Error, Console.In);
